import t from 'tap'
import { hideUserinfo } from '../../src/config/url-userinfo.ts'
import { loggedTarget, redactHeaders } from '../../src/logging/logger.ts'
import { growth } from '../helpers/growth.ts'

// hideUserinfo's search for a URL anywhere in a text started at each letter after a `.`, `+` or
// `-` and scanned the rest of the run for `://`: a client's `/x#a.a.a…@` request target, refused,
// cost ~150 ms of the event loop at 16 KB (its `request rejected` line, or an admin audit line).
t.test('a refused target of `a.a.a…@` is logged in time linear in its length', async t => {
  const target = (n: number) => `/x#${'a.'.repeat(n / 2 - 2)}@`
  t.equal(hideUserinfo(target(16384)), target(16384), 'no URL in it: left as it is')
  t.equal(loggedTarget(target(16384)), '/x#…')
  const ratio = growth(loggedTarget, target)
  // Linear: ~16; quadratic: ~256.
  t.ok(ratio < 40, `16 KB against 1 KB: ${ratio.toFixed(1)} times longer per call`)
})

t.test('URLs after such a run, or glued to one, still have their userinfo hidden', async t => {
  const run = 'a.'.repeat(4096)
  t.equal(hideUserinfo(`${run} https://u:S3CRET@h.example/x`), `${run} https://[redacted]@h.example/x`)
  t.equal(hideUserinfo(`${run}https://u:S3CRET@h.example/x`), `${run}https://[redacted]@h.example/x`, 'the run read as part of the scheme, as before')
  t.equal(hideUserinfo('see 1.x+https://u:S3CRET@h and _redis://:p@ss@h:6379/0'), 'see 1.x+https://[redacted]@h and _redis://[redacted]@h:6379/0',
    'a scheme after digits or an underscore too')
  t.equal(hideUserinfo(`/p/${run}@x/http://u:S3CRET@h.example`), `/p/${run}@x/http://[redacted]@h.example`)
})

// The userinfo of a URL-valued header or a refused target ends at the last @ before its path, or,
// where no host[:port] comes before one, at the last @: each shape here read in one pass.
t.test('URL-valued headers and refused targets are read in time linear in their length', async t => {
  const shapes: Record<string, (n: number) => string> = {
    'many @': n => `https://${'@'.repeat(n - 9)}/`,
    'no @ before the path': n => `https://${'a'.repeat(n - 10)}/@`,
    'a port of digits': n => `https://a:${'1'.repeat(n - 12)}x/@`,
    'a port of digits, then a query': n => `https://a:${'1'.repeat(n - 12)}?a@`,
    'schemes in a row': n => `${'a://'.repeat(n / 4 - 1)}a@`,
    'URLs in a path, each @ past a #': n => `/${'a://a#@'.repeat(n / 8 - 1)}`,
    'a password with a /': n => `https://a:${'b/'.repeat(n / 2 - 6)}@`,
    'slashes only': n => `https:${'/'.repeat(n - 8)}a@`,
    'a scheme never ended': n => `${'a'.repeat(n - 1)}@`,
    spaces: n => `5${' '.repeat(n - 3)}a@`,
    tabs: n => `https://${'\t'.repeat(n - 10)}a@`,
    'usernames alone, each host followed by a quote': n => `https://${"a@a'".repeat(n / 4 - 2)}`
  }
  for (const [name, make] of Object.entries(shapes)) {
    for (const [what, run] of [
      ['Refresh', (v: string) => redactHeaders({ refresh: v }, [])],
      ['Location', (v: string) => redactHeaders({ location: v }, [])],
      ['a target', loggedTarget]
    ] as const) {
      const ratio = growth(run, make)
      // Linear: ~16; quadratic: ~256.
      t.ok(ratio < 40, `${what}, ${name}: 16 KB against 1 KB: ${ratio.toFixed(1)} times longer per call`)
    }
  }
  t.equal(redactHeaders({ location: `https://u:p@h/${'@'.repeat(65536)}` }, []).location, `https://[redacted]@h/${'@'.repeat(65536)}`, '64 KB: the host and path kept')
})

// A Link URL runs to its `>`, a `<` in it included; one after a comma ends a stray `<`'s: each read once.
t.test('Link fields are read in time linear in their length', async t => {
  const shapes: Record<string, (n: number) => string> = {
    'URLs in a URL': n => `<https://a${'<https://a@'.repeat(n / 11 - 1)}`,
    'stray `<`s, commas': n => `<a>${';<a, '.repeat(n / 5 - 1)}`,
    'a stray `<`, commas then spaces': n => `<a>;<${`,${' '.repeat(63)}`.repeat(n / 64 - 1)}`
  }
  for (const [name, make] of Object.entries(shapes)) {
    const ratio = growth(v => redactHeaders({ link: v }, []), make)
    // Linear: ~16; quadratic: ~256.
    t.ok(ratio < 40, `${name}: 16 KB against 1 KB: ${ratio.toFixed(1)} times longer per call`)
  }
})
