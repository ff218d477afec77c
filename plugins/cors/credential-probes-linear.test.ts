import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, ROOT } from '../../test/helpers/run-cli.ts'
import { originProblem } from './origins.ts'

// Classic backtracking patterns: V8's linear-time engine runs them, so they load; the credential
// probes once ran them on the backtracking engine, on 30-character names that fail: hours.
const BACKTRACKING = [
  '^https:\\/\\/([a-z0-9]+[.-]?)*\\.mycompany\\.com$',
  '^https:\\/\\/(\\w+\\.?)+mycompany\\.io$',
  '^https:\\/\\/([a-z0-9-]+\\.?)*mycompanyname\\.com$'
]

t.test('with credentials, the load-time probes run an origin pattern on the linear-time engine only', async t => {
  const test = RegExp.prototype.test
  let runs = 0
  // A run on the backtracking engine throws instead of hanging the test.
  RegExp.prototype.test = function (this: RegExp, s: string) {
    if (this.source.includes('mycompany')) {
      if (!this.flags.includes('l')) throw new Error(`/${this.source}/${this.flags} run on the backtracking engine with ${s}`)
      runs++
    }
    return test.call(this, s)
  }
  t.teardown(() => { RegExp.prototype.test = test })
  const problems = BACKTRACKING.map(source => originProblem(`/${source}/`, true))
  RegExp.prototype.test = test
  t.ok(runs > 600, `probed (${runs} runs)`)
  t.equal(problems[0], undefined, 'subdomains of mycompany.com: loads')
  t.match(problems[1], /lets in more than the names it spells out \(https:\/\/zzportcullisprobemycompany\.io matches\)/)
  t.match(problems[2], /lets in more than the names it spells out \(https:\/\/zzportcullisprobemycompanyname\.com matches\)/)
})

t.test('portcullis validate with such patterns and credentials finishes (it ran for hours on Node 20 and 24)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cors-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, [
    'server: { listen: { host: 127.0.0.1, port: 0 } }',
    'upstreams:',
    '  up: { targets: [ { url: "http://127.0.0.1:1" } ] }',
    'routes:',
    ...BACKTRACKING.map((source, i) =>
      `  - { name: r${i}, match: { path: /r${i} }, upstream: up, plugins: { cors: { origins: [${JSON.stringify(`/${source}/`)}], credentials: true } } }`)
  ].join('\n') + '\n')
  // Without tap's NODE_OPTIONS, as a user runs it. 60 s: it takes a few seconds, nearly all of them
  // Node starting and loading the sources; without the fix it never ends. SIGKILL: hung in a
  // regexp, it never runs its SIGTERM handler.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
  const run = await new Promise<{ killed: boolean, code: number | null, output: string }>(resolve => {
    execFile(process.execPath, [...CLI_FROM_SOURCES, 'validate', '-c', file], { cwd: ROOT, env, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ killed: err?.killed ?? false, code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, output: stdout + stderr })
    })
  })
  t.equal(run.killed, false, 'finished within 60 s')
  t.equal(run.code, 1, run.output)
  t.notMatch(run.output, /routes\[0\]/, 'the first loads')
  t.match(run.output, /routes\[1\]\.plugins\.cors\.origins\[0\]: it lets in more than the names it spells out/)
  t.match(run.output, /routes\[2\]\.plugins\.cors\.origins\[0\]: it lets in more than the names it spells out/)
})

t.test('with credentials, a pattern open under the top-level domain it spells out is refused, as a wildcard on it is', async t => {
  const open: Array<[string, string]> = [
    ['^https:\\/\\/[a-z0-9-]+\\.es$', 'https://zzportcullisprobe.es'],
    ['^https:\\/\\/.*\\.es$', 'https://zzportcullisprobe.es'],
    ['^https:\\/\\/[a-z0-9-]+\\.mx(?::\\d+)?$', 'https://zzportcullisprobe.mx'],
    ['^https?:\\/\\/[\\w-]+\\.it$', 'https://zzportcullisprobe.it'],
    ['^https:\\/\\/[a-z0-9-]+\\.co\\.za$', 'https://zzportcullisprobe.co.za'],
    ['^https:\\/\\/(?:[a-z]+\\.)+com\\.mx$', 'https://zzportcullisprobe.com.mx']
  ]
  for (const [source, site] of open) {
    t.equal(originProblem(`/${source}/`, true), `it lets in sites anyone can register (${site} matches): with credentials: true, any site could read your users' responses: list the origins`, source)
    t.equal(originProblem(`/${source}/`, false), undefined, `without credentials, as broad as * is allowed: ${source}`)
  }
  t.match(originProblem('*.co.za', true), /lets in every site under co\.za, where anyone can have one/, 'a wildcard on a country\'s second level')
  t.match(originProblem('https://*.es', true), /lets in every site of a top-level domain/)
  for (const source of ['^https:\\/\\/[a-z0-9-]+\\.example\\.es$', '^https:\\/\\/(?:www\\.)?example\\.es$', '^https:\\/\\/[a-z0-9-]+\\.example\\.co\\.za$',
    '^https:\\/\\/(?:[a-z0-9-]+\\.)?example\\.com\\.mx(?::\\d+)?$', '^https:\\/\\/pr-\\d+\\.preview\\.dev$']) {
    t.equal(originProblem(`/${source}/`, true), undefined, `names under the operator's own domain load: ${source}`)
  }
  t.match(originProblem('/^https:\\/\\/\\w*example\\.es$/', true), /it lets in more than the names it spells out \(https:\/\/zzportcullisprobeexample\.es matches\)/,
    'text glued before a name under any top-level domain, as under .com')
})
