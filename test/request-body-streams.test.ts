import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'

// A user plugin whose request body stream upper-cases, refuses past 10 bytes, breaks, or drops
// its first byte (and leaves the Content-Length as it was); and
// which reports what Content-Length its response hook saw.
const dir = t.testdir({})
const writePlugin = (name: string, priority: number) => writeFileSync(join(dir, `${name}.ts`), `
import { Transform } from 'node:stream'
import { definePlugin, RequestRejected, Type } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)}

export default definePlugin({
  name: '${name}',
  priority: ${priority},
  schema: Type.Object({ mode: Type.String(), reply: Type.Optional(Type.String()) }),
  setup (config) {
    return {
      onRequest (req) {
        if (config.reply !== undefined) return { status: 200, headers: config.mode === 'bare' ? {} : { 'content-type': 'text/plain' }, body: config.reply }
        let seen = 0
        req.pipeBodyThrough(new Transform({
          transform (chunk, _enc, cb) {
            seen += chunk.length
            if (config.mode === 'limit' && seen > 10) cb(new RequestRejected('too big', { status: 413, body: { error: 'too_big' } }))
            else if (config.mode === 'break') cb(new Error('bad bytes'))
            else if (config.mode === 'drop') cb(null, seen === chunk.length ? chunk.subarray(1) : chunk)
            else cb(null, chunk.toString().toUpperCase())
          }
        }))
        if (config.mode !== 'drop') req.headers['content-length'] = undefined
      },
      onResponse (res) { res.headers['x-length-seen'] = String(res.headers['content-length']) }
    }
  }
})
`)
writePlugin('body', 500)
writePlugin('outer', 600)

let upstreamRequests = 0
let upstreamAborted = 0
const up = await startUpstream((req, res) => {
  upstreamRequests++
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('close', () => { if (!req.complete) upstreamAborted++ })
  req.on('end', () => {
    const body = JSON.stringify({ body: Buffer.concat(chunks).toString() })
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
})
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./body.ts, ./outer.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: upper, match: { path: /upper }, upstream: up, plugins: { body: { mode: upper } } }
  - { name: limit, match: { path: /limit }, upstream: up, plugins: { body: { mode: limit } } }
  - { name: break, match: { path: /break }, upstream: up, plugins: { body: { mode: break } } }
  - { name: drop, match: { path: /drop }, upstream: up, plugins: { body: { mode: drop } } }
  - { name: reply, match: { path: /reply }, upstream: up, plugins: { body: { mode: none, reply: hello }, outer: { mode: none } } }
  - { name: bare, match: { path: /bare }, upstream: up, plugins: { body: { mode: bare, reply: hello } } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

t.test('the body reaches the upstream through the plugin\'s stream', async t => {
  const res = await request(`${gw.url}/upper`, { method: 'POST', body: 'hello there' })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { body: 'HELLO THERE' })
  t.equal(res.headers['x-length-seen'], 'undefined', 'the upstream answered without a length')
})

t.test('RequestRejected answers the client with its reply; the upstream request is aborted', async t => {
  const [requestsBefore, abortedBefore] = [upstreamRequests, upstreamAborted]
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString() })
  socket.write('POST /limit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n')
  t.ok(await until(() => upstreamRequests > requestsBefore), 'the upstream is receiving the body')
  socket.write('a\r\nfghijklmno\r\n')
  await once(socket, 'end')
  t.match(answer, /^HTTP\/1.1 413 /)
  t.match(answer, /\r\nconnection: close\r\n/i, 'the connection closes: the rest of the body is not read')
  t.match(answer, /\r\n\r\n\{"error":"too_big"\}$/)
  t.ok(await until(() => upstreamAborted > abortedBefore), 'the upstream request was aborted')
})

t.test('any other stream failure is a 400 bad_body', async t => {
  const res = await request(`${gw.url}/break`, { method: 'POST', body: 'hello' })
  t.equal(res.statusCode, 400)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.match(await res.body.json(), { error: 'bad_body' })
})

t.test('a body stream that changes the length of a body with a Content-Length is the plugin\'s failure (500), not the target\'s', async t => {
  for (let i = 0; i < 6; i++) {
    const res = await request(`${gw.url}/drop`, { method: 'POST', body: 'hello' })
    t.equal(res.statusCode, 500)
    t.match(await res.body.json(), { error: 'plugin_error' })
  }
  t.same(gw.gateway.runtime.upstreams.get('up')!.snapshot().targets[0]?.down, [], 'not ejected (5 failures would have done it)')
  const res = await request(`${gw.url}/upper`, { method: 'POST', body: 'still' })
  t.same([res.statusCode, await res.body.json()], [200, { body: 'STILL' }], 'the target still serves')
})

t.test('a plugin reply carries its Content-Length to response hooks', async t => {
  const res = await request(`${gw.url}/reply`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-length-seen'], '5')
  t.equal(res.headers['content-length'], '5')
  t.equal(await res.body.text(), 'hello')
})

t.test("a plugin's text reply without a Content-Type gets none: only an object body is labelled JSON", async t => {
  const res = await request(`${gw.url}/bare`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], undefined)
  t.equal(await res.body.text(), 'hello')
})
