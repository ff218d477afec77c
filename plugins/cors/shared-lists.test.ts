import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { issues } from '../../test/helpers/config-issues.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import plugin from './index.ts'

// Routes sharing one origin list (a YAML alias, the top-level cors) had each its list checked,
// probed and compiled: 5,500 routes of one 70-entry list took 5 s to start, 12 s of checks with
// credentials and a pattern. Each list is now worked out once, each route's problems and
// warnings still said where they are.

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
`
/** A pattern of subdomains of `label`.com, probed at load (with credentials: by the check; without: for setup's warnings). */
const pattern = (label: string) => `"/^https:\\\\/\\\\/(?:[a-z0-9-]+\\\\.)*${label}\\\\.com$/"`
const routeLine = (i: number, plugins: string) => `  - { name: r${i}, match: { path: /r${i}/* }, upstream: up${plugins} }`

/** A config of `n` routes given one origin list, shared as `how` says. */
function shared (how: 'alias' | 'list' | 'top' | 'written', n: number, origins: string, settings = ''): string {
  const list = `[ ${origins}, "https://app.example.com" ]`
  const lines = Array.from({ length: n }, (_, i) => {
    if (how === 'top') return routeLine(i, '')
    if (how === 'alias') return routeLine(i, i === 0 ? `, plugins: &p { cors: { origins: ${list}${settings} } }` : ', plugins: *p')
    if (how === 'list') return routeLine(i, `, plugins: { cors: { origins: ${i === 0 ? `&o ${list}` : '*o'}${settings} } }`)
    return routeLine(i, `, plugins: { cors: { origins: ${list}${settings} } }`)
  })
  return `${HEAD}${how === 'top' ? `plugins:\n  cors: { origins: ${list}${settings} }\n` : ''}routes:\n${lines.join('\n')}\n`
}

/** How many times patterns naming `label` are run while `load` runs. */
async function runs (label: string, load: () => Promise<unknown>): Promise<number> {
  const test = RegExp.prototype.test
  let n = 0
  RegExp.prototype.test = function (this: RegExp, s: string) { if (this.source.includes(label)) n++; return test.call(this, s) }
  try {
    await load()
  } finally {
    RegExp.prototype.test = test
  }
  return n
}

// Labels of one shape (their runs alike), one per load: verdicts are kept for the process.
let labels = 0
const label = () => `shop${String.fromCharCode(97 + Math.floor(labels / 26), 97 + (labels++ % 26))}`

t.test('with credentials, a list shared by 40 routes, however shared, is probed as often as one route\'s', async t => {
  const first = label()
  const one = await runs(first, () => parseConfig(shared('alias', 1, pattern(first), ', credentials: true'), 'gw.yaml', {}))
  t.ok(one > 100, `one route: ${one} runs`)
  for (const how of ['alias', 'list', 'top', 'written'] as const) {
    const name = label()
    t.equal(await runs(name, () => parseConfig(shared(how, 40, pattern(name), ', credentials: true'), 'gw.yaml', {})), one, how)
  }
})

t.test('routes given one config object are checked once: the same problems, each route\'s said at its own key', async t => {
  const config = { origins: ['https://app.example.com/path'] }
  t.equal(plugin.check?.(config, undefined), plugin.check?.(config, undefined), 'one answer for the object')
  const bad = '"https://app.example.com/path"'
  const message = 'browsers send this origin as https://app.example.com (no path, no default port, the host in punycode): write that'
  t.same(await issues(t, shared('alias', 3, bad)), [0, 1, 2].map(i => `gw.yaml:${6 + i}:${i === 0 ? 88 : 64} routes[${i}].plugins.cors.origins[0]: ${message}`), 'aliased: on each route, at its alias')
  t.same(await issues(t, shared('list', 3, bad)), [0, 1, 2].map(i => `gw.yaml:${6 + i}:${i === 0 ? 88 : 83} routes[${i}].plugins.cors.origins[0]: ${message}`), 'a list aliased: on each route, at its alias')
  t.same(await issues(t, shared('top', 3, bad)), [`gw.yaml:6:22 plugins.cors.origins[0]: ${message}`], 'top-level: once, there')
})

t.test('at start, a list shared by 30 routes is probed and compiled once; each route is warned of its own', async t => {
  const loose = (name: string) => `"/^https:\\\\/\\\\/app.${name}x\\\\.com$/"`
  const start = async (n: number, name: string) => {
    let gw: Awaited<ReturnType<typeof startGateway>> | undefined
    const count = await runs(name, async () => { gw = await startGateway(shared('alias', n, `${pattern(name)}, ${loose(name)}`)) })
    t.teardown(() => gw?.close())
    return { count, warned: (gw?.logs ?? []).filter(l => String(l.msg).startsWith('cors: origins')).map(l => [l.route, l.msg]) }
  }
  const one = await start(1, label())
  t.ok(one.count > 0, `one route: ${one.count} runs`)
  const name = label()
  const many = await start(30, name)
  t.equal(many.count, one.count, 'thirty routes: as many runs')
  const said = `cors: origins[1] /^https:\\/\\/app.${name}x\\.com$/: an unescaped \`.\` matches any character: app.${name}x lets in appx${name}x too, which may be anyone's site; did you mean app\\.${name}x?`
  t.same(many.warned, Array.from({ length: 30 }, (_, i) => [`r${i}`, said]), 'a warning per route, naming it')
})
