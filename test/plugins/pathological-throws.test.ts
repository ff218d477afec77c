import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { rawRequest } from '../helpers/raw-http.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Values a plugin may throw that pino's error serializer, or the gateway's own `instanceof` and
// String(), throw on in turn. Logging them once ended the process (onFinished, an async hook's
// rejection, a WebSocket's onRequest), left the client unanswered and ejected a healthy target
// (a sync onResponse: the throw reached undici), or answered internal_error without the plugin.
const KINDS = {
  frozen: () => Object.freeze(new Error('frozen')),
  sealed: () => Object.seal(new Error('sealed')),
  'message-getter': () => Object.defineProperty(new Error(), 'message', { get () { throw new Error('no message') } }),
  'stack-getter': () => Object.defineProperty(new Error('stack getter'), 'stack', { get () { throw new Error('no stack') } }),
  'cause-getter': () => Object.defineProperty(new Error('cause getter'), 'cause', { get () { throw new Error('no cause') } }),
  'vcause-throws': () => Object.assign(new Error('verror'), { cause () { throw new Error('no cause') } }),
  'enumerable-getter': () => Object.defineProperty(new Error('enumerable getter'), 'detail', { enumerable: true, get () { throw new Error('no detail') } }),
  'aggregate-self': () => { const e = new AggregateError([], 'holds itself'); (e.errors as unknown[]).push(e); return e },
  'deep-cause': () => { let e = new Error('0'); for (let i = 1; i < 20_000; i++) e = new Error(String(i), { cause: e }); return e },
  'prototype-trap': () => new Proxy(new Error('proxied'), { getPrototypeOf () { throw new Error('no prototype') } }),
  revoked: () => { const { proxy, revoke } = Proxy.revocable(new Error('revoked'), {}); revoke(); return proxy },
  'tag-trap': () => new Proxy({}, { get (target, key) { if (key === Symbol.toStringTag) throw new Error('no tag'); return Reflect.get(target, key) as unknown } }),
  // What the serializer throws is itself such a value: logging the failure to log it fails again.
  'throws-itself': () => { const e = new Error(); Object.defineProperty(e, 'message', { get () { throw e } }); return e }
} satisfies Record<string, () => unknown>
type Kind = keyof typeof KINDS
const kinds = Object.keys(KINDS) as Kind[]
sharedWithPlugins('odd', (kind: Kind) => KINDS[kind]())
const disposeKind = sharedWithPlugins('disposeKind', { kind: 'throws-itself' as Kind })

const dir = t.testdir({})
const oddOf = "(req: any, hooks: string[]) => { const [, hook, kind] = req.path.split('/'); return hooks.includes(hook) ? shared('odd')(kind) : undefined }"
writeUserPlugin(dir, 'odd', 500, `{
  onRequest (req: any) { const v = (${oddOf})(req, ['request', 'async-request']); if (v !== undefined) { if (req.path.startsWith('/async')) return Promise.reject(v); throw v } },
  onResponse (_res: any, req: any) { const v = (${oddOf})(req, ['response', 'async-response']); if (v !== undefined) { if (req.path.startsWith('/async')) return Promise.reject(v); throw v } },
  onUpstreamTry (req: any) { const v = (${oddOf})(req, ['try']); if (v !== undefined) throw v },
  onUpstreamTryEnd (req: any) { const v = (${oddOf})(req, ['try-end']); if (v !== undefined) throw v },
  onFinished (req: any) { const v = (${oddOf})(req, ['finished']); if (v !== undefined) throw v },
  dispose () { throw shared('odd')(shared('disposeKind').kind) }
}`)
// A consumer id as a database may give it (a BigInt), or one that is not text at all. Set once
// the request has gone upstream: the access line has it as set, whatever the identity headers make of it.
writeUserPlugin(dir, 'odd-consumer', 500, `{
  onResponse (_res: any, req: any) {
    const ids: Record<string, () => unknown> = { bigint: () => 10n, symbol: () => Symbol('id'), function: () => () => 'id', getter: () => undefined }
    const kind = req.path.slice('/consumer/'.length)
    req.consumer = kind === 'getter' ? { get id () { throw new Error('no id') }, groups: [] } : { id: ids[kind]?.(), groups: [] }
  }
}`)

writeUserPlugin(dir, 'odd-setup', 500, "(() => { throw shared('odd')('throws-itself') })()")

const up = await startUpstream((req, res) => { req.resume(); res.end('upstream') })
t.teardown(() => up.close())
const config = (routes = '') => `loadPlugins: [ ./odd.ts, ./odd-consumer.ts, ./odd-setup.ts ]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:${routes}
  - { name: consumer, match: { path: /consumer/* }, upstream: u, plugins: { odd-consumer: {} } }
  - { name: r, match: { path: /* }, upstream: u, timeouts: { request: 20s }, plugins: { odd: {} } }
`
const file = join(dir, 'gateway.yaml')
const gw = await startGateway(config(), { file })
const port = Number(new URL(gw.url).port)
let closed = false
t.teardown(async () => { if (!closed) await gw.close() })

const get = (path: string) => request(`${gw.url}${path}`, { headersTimeout: 15_000, bodyTimeout: 15_000 })

/** What a failure line's err must be: the value described, never the serializer's own failure. */
function checkErr (t: Test, line: Record<string, unknown> | undefined, kind: Kind): void {
  const err = line?.err as { message?: unknown, stack?: unknown } | undefined
  t.type(err?.message, 'string', `${kind}: err.message`)
  t.ok(String(err?.message).length < 100_000, `${kind}: bounded`)
  if (kind === 'frozen' || kind === 'sealed') t.equal(err?.message, kind)
  if (kind === 'deep-cause') t.match(err?.message, /^19999: 19998: /)
}

async function stillServes (t: Test): Promise<void> {
  const res = await get('/fine')
  t.equal(res.statusCode, 200, 'the gateway still serves, its target not ejected')
  await res.body.dump()
}

for (const hook of ['request', 'async-request', 'response', 'async-response']) {
  t.test(`${hook}: any thrown value is the plugin's failure, 500 plugin_error, logged naming it`, async t => {
    for (const kind of kinds) {
      const res = await get(`/${hook}/${kind}`)
      t.equal(res.statusCode, 500, kind)
      const id = res.headers['x-request-id'] as string
      t.match(await res.body.json(), { error: 'plugin_error', requestId: id }, kind)
      const line = await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id })
      t.match(line, { level: 50, route: 'r', plugin: 'odd' }, kind)
      checkErr(t, line, kind)
      t.ok(await waitForLog(gw.logs, { msg: 'request', requestId: id }), `${kind}: access-logged`)
    }
    await stillServes(t)
    t.notOk(gw.logs.some(l => l.msg === 'request failed in the gateway'))
  })
}

for (const [hook, name] of [['try', 'onUpstreamTry'], ['try-end', 'onUpstreamTryEnd'], ['finished', 'onFinished']]) {
  t.test(`${name}: any thrown value is logged naming the plugin, and the request goes on`, async t => {
    for (const kind of kinds) {
      const res = await get(`/${hook}/${kind}`)
      t.equal(res.statusCode, 200, kind)
      t.equal(await res.body.text(), 'upstream')
      const id = res.headers['x-request-id'] as string
      const line = await waitForLog(gw.logs, { msg: `plugin ${name} hook failed`, requestId: id })
      t.match(line, { level: 50, plugin: 'odd' }, kind)
      checkErr(t, line, kind)
      t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), { status: 200 }, `${kind}: access-logged`)
    }
    await stillServes(t)
  })
}

t.test('a WebSocket upgrade whose onRequest throws any value: 500 plugin_error on the connection', async t => {
  for (const kind of kinds) {
    const res = await rawRequest(port, [`GET /request/${kind} HTTP/1.1`, 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket',
      'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])
    t.equal(res.status, 500, kind)
    t.match(JSON.parse(res.body), { error: 'plugin_error' }, kind)
    const id = res.headers.find(([n]) => n === 'x-request-id')?.[1] as string
    checkErr(t, await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), kind)
  }
  await stillServes(t)
})

t.test('a consumer id that is not text: the access line stays valid JSON, with the id as text or without it', async t => {
  for (const [kind, consumer] of [['bigint', '10'], ['symbol', undefined], ['function', undefined], ['getter', undefined]] as const) {
    const res = await get(`/consumer/${kind}`)
    await res.body.dump()
    const line = await waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] })
    t.ok(line, kind)
    t.equal(line?.consumer, consumer, kind)
  }
  await stillServes(t)
})

t.test('a request target with userinfo the gateway refuses: the rejected line hides it', async t => {
  const res = await rawRequest(port, ['GET ftp://alice:s3cret@example.com/x HTTP/1.1', 'Host: example.com', 'Connection: close'])
  t.equal(res.status, 400)
  const line = await waitForLog(gw.logs, { msg: 'request rejected', requestId: res.headers.find(([n]) => n === 'x-request-id')?.[1] })
  t.ok(line)
  t.notMatch(JSON.stringify(line), /s3cret|alice/)
  t.match(line?.path, /\[redacted\]@example\.com\/x$/)
})

t.test('a setup that throws such a value on reload: the reload fails, logged, and the active config serves', async t => {
  writeFileSync(file, `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${config('\n  - { name: s, match: { path: /setup }, upstream: u, plugins: { odd-setup: {} } }')}`)
  const status = await gw.reloader.reload('admin')
  t.match(status, { result: 'failed', error: /^route "s", plugin odd-setup: / })
  t.match(await waitForLog(gw.logs, { msg: 'config reload failed while building the new runtime; the active config keeps serving' }), { err: { type: 'PluginSetupError' } })
  await stillServes(t)
})

t.test('a dispose that throws such a value: logged, and the reload or shutdown goes on', async t => {
  const disposeFailures = () => gw.logs.filter(l => l.msg === 'plugin dispose failed')
  disposeKind.kind = 'throws-itself'
  await gw.apply(gw.loaded) // the same config again: the replaced one's plugins are disposed of
  t.ok(await until(() => disposeFailures().length === 1, 10_000), 'on reload')
  await stillServes(t)
  disposeKind.kind = 'revoked'
  closed = true
  await gw.close()
  t.equal(disposeFailures().length, 2, 'at shutdown')
  for (const line of disposeFailures()) t.match(line, { level: 40, plugin: 'odd', err: { message: String } })
})
