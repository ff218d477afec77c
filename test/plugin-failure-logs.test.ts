import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// A plugin's failure is logged with the `plugin` that failed, as a hook's throw is: also where the
// gateway finds it later (writing the head, reading a body stream). The culprit sits between two
// bystanders that take extraResponseHeaders and add body streams too, on each side of it.
const dir = t.testdir({})
const API = JSON.stringify(new URL('../src/index.ts', import.meta.url).href)
writeFileSync(join(dir, 'culprit.ts'), `
import { Transform } from 'node:stream'
import { definePlugin, RequestRejected, Type } from ${API}

export default definePlugin({
  name: 'culprit',
  priority: 500,
  schema: Type.Object({}),
  setup: () => ({
    onRequest (req): any {
      switch (req.path) {
        case '/reply-status': return { status: 99 }
        case '/reply-null': return null
        case '/reply-header': return { status: 200, headers: { 'x-bad': 'a\\r\\nb' }, body: 'x' }
        case '/extra-header': req.extraResponseHeaders['x-bad'] = 'a\\r\\nb'; return
        case '/body-reply':
          req.pipeBodyThrough(new Transform({ transform (_c, _e, cb) { cb(new RequestRejected('no', { status: 99 })) } }))
          return
        case '/body-throw':
          req.pipeBodyThrough(new Transform({ transform () { throw new Error('thrown in transform') } }))
      }
    },
    onResponse (res, req) {
      if (req.path === '/longer') res.pipeThrough(new Transform({ transform (c, _e, cb) { cb(null, Buffer.concat([c, c])) } }))
      if (req.path === '/objects') res.pipeThrough(new Transform({ readableObjectMode: true, transform (_c, _e, cb) { cb(null, { an: 'object' }) } }))
    }
  })
})
`)
for (const [name, priority] of [['outer', 900], ['inner', 100]] as const) {
  writeFileSync(join(dir, `${name}.ts`), `
import { PassThrough } from 'node:stream'
import { definePlugin, Type } from ${API}

export default definePlugin({
  name: '${name}',
  priority: ${priority},
  schema: Type.Object({}),
  setup: () => ({
    onRequest (req) {
      req.extraResponseHeaders['x-${name}'] = 'fine'
      if (req.path.startsWith('/body-')) {
        req.pipeBodyThrough(new PassThrough())
        req.headers['content-length'] = undefined
      }
    }
  })
})
`)
}

const up = await startUpstream((req, res) => { req.resume(); req.on('end', () => res.end('from the upstream')) })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./culprit.ts, ./outer.ts, ./inner.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { culprit: {}, outer: {}, inner: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

const CASES: Record<string, RegExp> = {
  '/reply-status': /^plugin culprit replied with status 99/,
  '/reply-null': /^plugin culprit replied null/,
  '/reply-header': /^Invalid character in header content \["x-bad"\]$/,
  '/extra-header': /^Invalid character in header content \["x-bad"\]$/,
  '/longer': /^plugin culprit changed the response body or its content-length, and they no longer match/,
  '/objects': /^a response body stream put out an object, not a Buffer or a string$/,
  '/body-reply': /^plugin culprit replied with status 99/,
  '/body-throw': /^thrown in transform$/
}

for (const [path, message] of Object.entries(CASES)) {
  t.test(`${path}: 500 plugin_error, logged naming the plugin`, async t => {
    const res = await request(`${gw.url}${path}`, { method: 'POST', body: 'a body', headersTimeout: 5_000 })
    t.equal(res.statusCode, 500)
    const id = res.headers['x-request-id']
    t.match(await res.body.json(), { error: 'plugin_error', requestId: id })
    t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: 'r', plugin: 'culprit', err: { message } })
  })
}
