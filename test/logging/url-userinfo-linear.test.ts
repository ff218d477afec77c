import t from 'tap'
import { hideUserinfo } from '../../src/config/url-userinfo.ts'
import { loggedTarget } from '../../src/logging/logger.ts'
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
