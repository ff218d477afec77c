import t, { type Test } from 'tap'
import { constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { h2Connect } from '../helpers/http2.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// A client that resets its stream (RST_STREAM CANCEL) has left, as one that closes its HTTP/1.1
// connection has: Node ends the stream's writable side then, which must not read as a response sent.

/** A gateway with an h2c listener in front of `upstream` (2 connections, a short queue); its admin for /metrics. */
async function h2cGateway (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ gw: TestGateway, session: ClientHttp2Session }> {
  const up = await startUpstream(handler)
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    connections: 2
    queue: { max: 10, timeout: 1s }
routes:
  - name: api
    match: { path: /api/* }
    upstream: api
`, { admin: true })
  t.teardown(() => gw.close())
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  return { gw, session }
}

function cancel (stream: ClientHttp2Stream): void {
  stream.close(constants.NGHTTP2_CANCEL)
}

t.test('HTTP/2: a stream the client cancels before the answer aborts the upstream request, frees its connection, and is logged 499', async t => {
  let received = 0
  let closed = 0
  const { gw, session } = await h2cGateway(t, (req, res) => {
    if (req.url === '/api/hang') { received++; res.on('close', () => closed++); return }
    res.end('ok')
  })
  const streams = [0, 1].map(() => session.request({ ':path': '/api/hang' }).on('error', () => {}))
  await until(() => received === 2)
  for (const s of streams) cancel(s)
  t.ok(await until(() => closed === 2), 'the upstream saw both requests closed')
  // Both of the upstream's 2 connections were held: a request gets one only if they were given back.
  const next = await request(`${gw.url}/api/next`)
  t.equal(next.statusCode, 200, 'the next request is served, not refused as busy')
  await next.body.dump()
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request' && l.path === '/api/hang').length === 2))
  t.same(gw.logs.filter(l => l.msg === 'request' && l.path === '/api/hang').map(l => l.status), [499, 499], 'logged as the client gone')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="api",method="GET",status="499"}'), 2, 'counted 499')
})

t.test('HTTP/2: a download the client cancels midway stops reading the upstream body, logged 499', async t => {
  let closed = false
  const { gw, session } = await h2cGateway(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    const timer = setInterval(() => res.write('chunk\n'), 20)
    res.on('close', () => { clearInterval(timer); closed = true })
  })
  const stream = session.request({ ':path': '/api/stream' }).on('error', () => {})
  await new Promise(resolve => stream.once('data', resolve))
  cancel(stream)
  t.ok(await until(() => closed), 'the upstream response is closed')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/api/stream' }), { status: 499 }, 'logged as the client gone')
})

t.test('HTTP/2: an upload the client resets midway (RST_STREAM without END_STREAM) is aborted upstream, never ended as if whole', async t => {
  const uploads: Array<{ bytes: number, complete: boolean | undefined }> = []
  const { gw, session } = await h2cGateway(t, (req, res) => {
    const upload = { bytes: 0, complete: undefined as boolean | undefined }
    uploads.push(upload)
    req.on('data', (c: Buffer) => { upload.bytes += c.length })
    req.on('end', () => { upload.complete = true; res.end('stored') })
    req.on('close', () => { upload.complete ??= req.complete })
  })
  // An abort (fetch's, Node's AbortSignal) resets with CANCEL; destroy() with NO_ERROR, which Node's
  // http2 reads as the stream's end. (Node's stream.close() sends END_STREAM first: that body is whole.)
  const resets: Record<string, (stream: ClientHttp2Stream, abort: AbortController) => void> = {
    CANCEL: (_stream, abort) => abort.abort(),
    NO_ERROR: stream => stream.destroy()
  }
  let i = 0
  for (const [code, reset] of Object.entries(resets)) {
    for (const retry of [1, 2]) {
      const at = `${code} #${retry}`
      const abort = new AbortController()
      // No Content-Length: the gateway sends it chunked, whose end the upstream would take as the body's.
      const stream = session.request({ ':method': 'PUT', ':path': `/api/upload/${i}` }, { endStream: false, signal: abort.signal }).on('error', () => {})
      stream.write(Buffer.alloc(20_000, 'x'))
      t.ok(await until(() => uploads[i]?.bytes === 20_000), `${at}: the upstream has the bytes sent`)
      reset(stream, abort)
      t.ok(await until(() => uploads[i]?.complete !== undefined), `${at}: the upstream's request ended`)
      t.equal(uploads[i]?.complete, false, `${at}: aborted, not a complete body`)
      i++
    }
  }
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request' && l.status === 499).length === 4), 'logged as the client gone')
  t.equal(gw.gateway.runtime.inFlight, 0)
})
