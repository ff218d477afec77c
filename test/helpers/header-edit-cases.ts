import type { Test } from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError } from '../../src/config/config-error.ts'

type Headers = Record<string, string | string[] | undefined>

const NOT_SETTABLE = 'must be a valid header name, and not a hop-by-hop or framing header (Connection, Transfer-Encoding, Content-Length, Proxy-*...)'
export const NOT_SETTABLE_KEY = 'is not a valid header name, or is a hop-by-hop or framing header (Connection, Transfer-Encoding, Content-Length, Proxy-*...)'

/**
 * Sends `headers` from one side of the gateway through a route with `plugin: <edits>` and
 * returns the headers the other side received. The plugin under test decides the direction.
 */
export type Relay = (t: Test, edits: string, headers: Record<string, string>) => Promise<Headers>

/** The config errors of a route with `plugin: <edits>` (the edits' lines start on line 11). */
async function configIssues (t: Test, plugin: string, edits: string): Promise<ConfigError['issues']> {
  const text = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: r
    match: { path: / }
    upstream: up
    plugins:
      ${plugin}:${edits}
`
  const err = await parseConfig(text, 'gateway.yaml', {}).then(() => undefined, (e: unknown) => e)
  t.type(err, ConfigError)
  return err instanceof ConfigError ? err.issues : []
}

/** Behaviour shared by request-headers and response-headers; `relay` runs one exchange. */
export function headerEditTests (t: Test, plugin: string, relay: Relay): void {
  t.test('edits apply in order: remove, then rename, then set', async t => {
    const seen = await relay(t, `
        remove: [ x-a, x-e ]
        rename: { x-a: x-b, x-c: x-d }
        set: { x-d: set, x-e: set }`, { 'x-a': 'a', 'x-c': 'c', 'x-e': 'e', 'x-other': 'kept' })
    t.same([seen['x-a'], seen['x-b']], [undefined, undefined], 'removed before rename: nothing left to rename')
    t.same([seen['x-c'], seen['x-d']], [undefined, 'set'], 'renamed before set: set wins')
    t.equal(seen['x-e'], 'set', 'removed before set: set applies')
    t.equal(seen['x-other'], 'kept', 'other headers untouched')
  })

  t.test('header names are case-insensitive', async t => {
    const seen = await relay(t, `
        remove: [ X-DROP ]
        rename: { X-Old-Name: X-NEW-Name }
        set: { X-MiXeD: configured }`, { 'x-drop': '1', 'X-OLD-NAME': 'moved', 'x-mixed': 'original' })
    t.equal(seen['x-drop'], undefined, 'removed whatever the case')
    t.same([seen['x-old-name'], seen['x-new-name']], [undefined, 'moved'], 'renamed whatever the case')
    t.equal(seen['x-mixed'], 'configured', 'set replaces the value whatever the case (one header, not two)')
  })

  t.test('a rename whose header is absent leaves the header it renames to alone', async t => {
    const seen = await relay(t, `
        rename: { x-a: x-b }`, { 'x-b': 'kept' })
    t.same([seen['x-a'], seen['x-b']], [undefined, 'kept'])
  })

  t.test('every hop-by-hop header, in any case, is refused; so is an unknown key', async t => {
    const issues = await configIssues(t, plugin, `
        sets: { x-a: b }
        set: { Connection: v, keep-alive: v, TE: v, Trailer: v, Transfer-Encoding: v, UPGRADE: v, Expect: v, Proxy-Authorization: v, Proxy: v, HTTP2-Settings: v, X-Fine: v }`)
    const at = `routes[0].plugins.${plugin}`
    t.same(issues.map(i => `${i.path}: ${i.message}`), [
      `${at}.sets: unknown key "sets" (did you mean "set"?)`,
      ...['Connection', 'keep-alive', 'TE', 'Trailer', 'Transfer-Encoding', 'UPGRADE', 'Expect', 'Proxy-Authorization', 'Proxy', 'HTTP2-Settings'].map(h => `${at}.set.${h}: "${h}" ${NOT_SETTABLE_KEY}`)
    ])
  })

  // Set or renamed to, a Content-Length other than the body's breaks the framing: a hang, or body bytes read as the next message.
  t.test('Content-Length, in any case, may be neither set nor renamed to or from', async t => {
    const issues = await configIssues(t, plugin, `
        rename: { x-length: Content-Length, content-length: x-length }
        set: { CONTENT-LENGTH: "0" }`)
    const at = `routes[0].plugins.${plugin}`
    t.same(issues.map(i => `${i.path}: ${i.message}`), [
      `${at}.rename.x-length: ${NOT_SETTABLE}`,
      `${at}.rename.content-length: "content-length" ${NOT_SETTABLE_KEY}`,
      `${at}.set.CONTENT-LENGTH: "CONTENT-LENGTH" ${NOT_SETTABLE_KEY}`
    ])
  })

  t.test('two rename or set keys of one header (another case) are a config error at the later key, naming both: only one would apply, silently', async t => {
    const issues = await configIssues(t, plugin, `
        rename: { X-Old: x-new, x-old: x-other }
        set: { X-A: "1", x-a: "2", X-Fine: "3", x-b: "4" }`)
    const at = `routes[0].plugins.${plugin}`
    const twins = (first: string, later: string) => `"${first}" and "${later}" are one header (names are case-insensitive): only one of them would apply; keep one`
    t.same(issues.map(i => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`), [
      `gateway.yaml:11:40 ${at}.rename.x-old: ${twins('X-Old', 'x-old')}`,
      `gateway.yaml:12:31 ${at}.set.x-a: ${twins('X-A', 'x-a')}`
    ])
  })

  t.test('bad header names and values are config errors with positions', async t => {
    const issues = await configIssues(t, plugin, `
        remove: [ "bad header" ]
        rename: { x-ok: "to:colon", "from space": x-fine, x-a: Transfer-Encoding }
        set: { "x(y)": v, X-Ok: "line\\nbreak", Connection: close, proxy-x: "1" }`)
    const at = `routes[0].plugins.${plugin}`
    t.same(issues.map(i => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`), [
      `gateway.yaml:11:19 ${at}.remove[0]: must be a valid header name`,
      `gateway.yaml:12:25 ${at}.rename.x-ok: ${NOT_SETTABLE}`,
      `gateway.yaml:12:37 ${at}.rename.from space: "from space" ${NOT_SETTABLE_KEY}`,
      `gateway.yaml:12:64 ${at}.rename.x-a: ${NOT_SETTABLE}`,
      `gateway.yaml:13:16 ${at}.set.x(y): "x(y)" ${NOT_SETTABLE_KEY}`,
      `gateway.yaml:13:33 ${at}.set.X-Ok: must be a valid header value (no line breaks or control characters)`,
      `gateway.yaml:13:48 ${at}.set.Connection: "Connection" ${NOT_SETTABLE_KEY}`,
      `gateway.yaml:13:67 ${at}.set.proxy-x: "proxy-x" ${NOT_SETTABLE_KEY}`
    ])
  })
}
