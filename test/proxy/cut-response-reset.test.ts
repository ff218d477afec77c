import t from 'tap'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { constants, gunzipSync, gzipSync } from 'node:zlib'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'

// A response cut after its head was sent ended with a FIN. Sent without Content-Length to an
// HTTP/1.0 client (or nginx's proxy_http_version 1.0), it is close-delimited: the client, or a
// cache, took the body cut short for a whole one. It is now reset (RST) then. A framed body
// (chunked to HTTP/1.1, or with a Content-Length) still ends with a FIN: a reset would drop earlier
// pipelined answers the kernel still holds to send, and the framing already tells the cut.
// Each upstream breaks once the client has read every byte it sent: libuv reads bytes and a reset
// that come together as an end (a partial read, then POLLHUP), which would hide the reset here.

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const FILLER = 'x'.repeat(1000)
const BIG = 1_000_000
/** A gzip body that decodes for 100 KB, then stops 2 KB short of its end. */
const TEXT = Array.from({ length: 4000 }, (_, i) => `line ${i} ${(i * 7919 % 100_003).toString(36)}\n`).join('')
const GZIP = gzipSync(TEXT)
const GZIP_CUT = GZIP.subarray(0, GZIP.length - 2048)
/** What of it decodes, all of which the client gets before the end fails. */
const DECODED = gunzipSync(GZIP_CUT, { finishFlush: constants.Z_SYNC_FLUSH }).length

/** Each upstream request's socket, by path, and what breaks it once the client has its first bytes. */
const breaks = new Map<string, () => void>()
const upstreamSockets = new Set<Socket>()
const up = createServer(socket => {
  upstreamSockets.add(socket)
  socket.on('error', () => {})
  let head = ''
  socket.on('data', (c: Buffer) => {
    if (head.includes('\r\n\r\n')) return
    head += c.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    const path = head.split(' ')[1] as string
    if (path.startsWith('/close-delimited')) {
      // Its FIN would be its end: broken, it can only reset.
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${FILLER}`)
      breaks.set(path, () => { socket.resetAndDestroy() })
    } else if (path.startsWith('/chunked')) {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n${FILLER}\r\n`)
      breaks.set(path, () => { socket.destroy() }) // no last chunk
    } else if (path.startsWith('/gzip')) {
      // Well framed (chunked, ended), but the gzip stream in it is 2 KB short: compress's decoder fails at its end.
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n${GZIP_CUT.length.toString(16)}\r\n`)
      socket.write(GZIP_CUT)
      socket.write('\r\n')
      breaks.set(path, () => { socket.end('0\r\n\r\n') })
    } else if (path.startsWith('/big')) {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${BIG}\r\n\r\n${'b'.repeat(BIG)}`)
    } else if (path.startsWith('/sized')) {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n${FILLER}`)
      setImmediate(() => { socket.resetAndDestroy() })
    } else {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${FILLER}`)
    }
  })
})
up.listen(0, '127.0.0.1')
await once(up, 'listening')
t.teardown(() => { for (const s of upstreamSockets) s.destroy(); up.close() })

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(up.address() as AddressInfo).port}" } ] }
routes:
  - { name: compressed, match: { path: /gzip/* }, upstream: up, plugins: { compress: {} } }
  - { name: plain, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = new URL(gw.url).port

interface Outcome {
  /** How the client's connection ended: 'reset' (ECONNRESET), 'end' (a FIN), or 'left'. */
  readonly ended: string
  readonly received: string
}

/** The body bytes in a response as received so far, its chunk framing taken off when chunked. */
function bodyLength (raw: Buffer): number {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return 0
  let body = raw.subarray(end + 4)
  if (!/^transfer-encoding: chunked/im.test(raw.subarray(0, end).toString('latin1'))) return body.length
  let length = 0
  for (let line = body.indexOf('\r\n'); line >= 0; line = body.indexOf('\r\n')) {
    const size = parseInt(body.subarray(0, line).toString('latin1'), 16)
    const data = body.subarray(line + 2, line + 2 + size)
    length += data.length
    if (data.length < size) break
    body = body.subarray(line + 2 + size + 2)
  }
  return length
}

/**
 * A raw client: sends `GET path` in `version`, calls `onBody` once `bodyBytes` of the body have
 * come, and tells how its connection ended. `leave`: it closes its connection then.
 */
async function fetchRaw (version: '1.0' | '1.1', path: string, bodyBytes: number, onBody = (): void => {}, leave = false): Promise<Outcome> {
  const socket = connect(Number(port), '127.0.0.1')
  socket.write(`GET ${path} HTTP/${version}\r\nHost: a\r\nAccept-Encoding: identity\r\n\r\n`)
  let received = Buffer.alloc(0)
  let called = false
  const ended = new Promise<string>(resolve => {
    socket.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code === 'ECONNRESET' ? 'reset' : String(err.code)) })
    socket.once('end', () => { resolve('end') })
    socket.once('close', () => { resolve('left') })
  })
  socket.on('data', (c: Buffer) => {
    received = Buffer.concat([received, c])
    if (called || bodyLength(received) < bodyBytes) return
    called = true
    onBody()
    if (leave) socket.destroy()
  })
  const outcome = { ended: await ended, received: received.toString('latin1') }
  socket.destroy()
  return outcome
}

for (const version of ['1.0', '1.1'] as const) {
  for (const [what, base, sent] of [
    ['an upstream whose close-delimited body resets', '/close-delimited', FILLER.length],
    ['an upstream whose chunked body ends without its last chunk', '/chunked', FILLER.length],
    ['compress: a gzip body decoded for the client, whose end does not decode', '/gzip/cut', DECODED]
  ] as const) {
    t.test(`HTTP/${version}, ${what}: the 200 already sent, ${version === '1.0' ? 'the client\'s connection is reset, not ended' : 'its chunked framing left unended'}`, async t => {
      const path = `${base}-${version}`
      const { ended, received } = await fetchRaw(version, path, sent, () => breaks.get(path)?.())
      t.match(received, /^HTTP\/1\.1 200 /, 'the head was sent')
      const head = received.slice(0, received.indexOf('\r\n\r\n'))
      if (version === '1.0') {
        t.notMatch(head, /content-length|transfer-encoding/i, 'close-delimited: only the connection\'s end ends it')
        t.equal(ended, 'reset', 'ECONNRESET, never a clean end')
      } else {
        t.match(head, /transfer-encoding: chunked/i)
        t.notOk(received.endsWith('0\r\n\r\n'), 'no last chunk')
        t.equal(ended, 'end', 'a FIN: the framing tells the cut')
      }
      t.match(await waitForLog(gw.logs, { msg: 'request', path }), { status: 200, error: 'upstream_broken' }, 'logged as before')
    })
  }

  t.test(`HTTP/${version}: a client that leaves mid-body is logged 499, as before`, async t => {
    const path = `/chunked-left-${version}`
    t.equal((await fetchRaw(version, path, FILLER.length, undefined, true)).ended, 'left')
    t.match(await waitForLog(gw.logs, { msg: 'request', path }), { status: 499 })
  })
}

t.test('HTTP/1.0, a whole close-delimited body: ended cleanly (FIN), not reset', async t => {
  const { ended, received } = await fetchRaw('1.0', '/whole', FILLER.length)
  t.equal(ended, 'end')
  t.ok(received.endsWith(`\r\n\r\n${FILLER}`), 'the whole body')
  const line = await waitForLog(gw.logs, { msg: 'request', path: '/whole' })
  t.match(line, { status: 200 })
  t.equal(line?.error, undefined)
})

t.test('HTTP/1.1 pipelined: a whole answer, then one with a Content-Length cut short: the first arrives whole (no reset drops it)', async t => {
  const socket = connect(Number(port), '127.0.0.1')
  socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /sized HTTP/1.1\r\nHost: a\r\n\r\n')
  // Not read until the gateway has given up on the second: the first is then in the kernel's buffers.
  socket.pause()
  await waitForLog(gw.logs, { msg: 'request', path: '/sized' })
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const ended = await new Promise<string>(resolve => {
    socket.once('error', (err: NodeJS.ErrnoException) => { resolve(String(err.code)) })
    socket.once('end', () => { resolve('end') })
    socket.resume()
  })
  socket.destroy()
  const received = Buffer.concat(chunks).toString('latin1')
  t.equal(ended, 'end')
  const second = received.indexOf('HTTP/1.1 200', 1)
  t.ok(second > 0, 'the second head came after the first answer')
  t.equal(received.slice(0, second).length - received.indexOf('\r\n\r\n') - 4, BIG, 'the first body whole')
  t.match(received.slice(second), /content-length: 5000/i)
})
