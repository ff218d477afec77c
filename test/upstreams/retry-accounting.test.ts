import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'

// Each failed try's own line is counted: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

/** Target a answers every request `status` with a body, b answers 200; round-robin starts on a. */
async function statusAndOk (t: Test, status: number, policy: string): Promise<{ gw: TestGateway, hits: { a: number, b: number } }> {
  const hits = { a: 0, b: 0 }
  const a = await startUpstream((req, res) => { hits.a++; req.resume(); res.writeHead(status, { 'content-type': 'text/plain' }).end('not now') })
  const b = await startUpstream((req, res) => { hits.b++; req.resume(); res.end('ok') })
  t.teardown(async () => { await a.close(); await b.close() })
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    balance: round-robin
${policy.replace(/^/gm, '    ')}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return { gw, hits }
}

const targetA = (gw: TestGateway) => gw.gateway.runtime.upstreams.get('up')!.snapshot().targets[0]!

async function get (gw: TestGateway): Promise<string> {
  const res = await request(`${gw.url}/x`)
  return `${res.statusCode} ${await res.body.text()}`
}

t.test('a retried 4xx is an answer, not a failure: the target is neither ejected nor its breaker opened', async t => {
  const { gw, hits } = await statusAndOk(t, 429, `retries: { on: [connect-error, reset, 429], budget: 1 }
passive: { consecutiveFailures: 3 }
circuitBreaker: { minRequests: 3 }`)
  for (let i = 0; i < 12; i++) t.equal(await get(gw), '200 ok')
  t.same(hits, { a: 6, b: 12 }, 'a kept its turn: every other request tried it first')
  const a = targetA(gw)
  t.equal(a.ejectedUntil, null, 'not ejected')
  t.equal(a.breaker, 'closed', 'breaker closed')
  t.notOk(gw.logs.some(l => l.msg === 'target ejected after consecutive failures' || l.msg === 'circuit breaker open'), 'nothing logged against it')
})

t.test('a retried 5xx still counts as a failure, once per try', async t => {
  const { gw, hits } = await statusAndOk(t, 503, 'retries: { on: [503], budget: 1 }\npassive: { consecutiveFailures: 2 }')
  t.equal(await get(gw), '200 ok')
  t.equal(targetA(gw).ejectedUntil, null, 'one failure of two: not ejected yet (counted twice, it would be)')
  t.equal(await get(gw), '200 ok') // b's turn
  t.equal(await get(gw), '200 ok')
  t.not(targetA(gw).ejectedUntil, null, 'the second failure ejects it')
  t.same(hits, { a: 2, b: 3 })
})

t.test('a streamed body through plugin body streams is retried after a connect error, whole', async t => {
  const received: Array<{ length: number, sha256: string }> = []
  const live = await startUpstream((req, res) => {
    const hash = createHash('sha256')
    let length = 0
    req.on('data', (c: Buffer) => { hash.update(c); length += c.length })
    req.on('end', () => { received.push({ length, sha256: hash.digest('hex') }); res.end('stored') })
  })
  t.teardown(() => live.close())
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "http://127.0.0.1:${await deadPort()}" }, { url: "${live.url}" } ]
    balance: round-robin
    passive: false
routes:
  - { name: size, match: { path: /size }, upstream: up, plugins: { request-size: { maxBody: 1MiB } } }
  - { name: gzip, match: { path: /gzip }, upstream: up, plugins: { compress: { requests: true } } }
`)
  t.teardown(() => gw.close())
  // Larger than the streams' buffers, and not one repeated byte: a lost or repeated chunk shows.
  const plain = Buffer.alloc(600_000)
  for (let i = 0; i < plain.length; i += 4) plain.writeUInt32LE((i * 2654435761) >>> 0, i)
  const digest = createHash('sha256').update(plain).digest('hex')
  const chunked = (body: Buffer) => Readable.from((function * () { for (let i = 0; i < body.length; i += 50_000) yield body.subarray(i, i + 50_000) })())

  // Round-robin: each request (one upstream, alternating targets) meets the dead port first every other time.
  const cases: Array<[string, () => { body: Buffer | Readable, headers?: Record<string, string> }]> = [
    ['/size', () => ({ body: chunked(plain) })],
    ['/gzip', () => ({ body: chunked(gzipSync(plain)), headers: { 'content-encoding': 'gzip' } })],
    ['/gzip', () => ({ body: gzipSync(plain), headers: { 'content-encoding': 'gzip' } })]
  ]
  for (const [path, make] of cases) {
    for (let i = 0; i < 2; i++) {
      const answer = await request(`${gw.url}${path}`, { method: 'PUT', ...make() })
        .then(async res => `${res.statusCode} ${await res.body.text()}`, (err: Error) => err.message)
      t.equal(answer, '200 stored', path)
    }
  }
  t.same(received, Array.from({ length: 6 }, () => ({ length: plain.length, sha256: digest })), 'the live target received the whole body each time')
  t.equal(gw.logs.filter(l => l.retried === true).length, 3, 'half the requests were retried')
})
