import t from 'tap'
import { Readable } from 'node:stream'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { catchAllGateway } from './helpers/catch-all.ts'
import { MB, patternBody, patternSha, settled, sha256, writePattern, type WriteProgress } from './helpers/streams.ts'
import { bufferGrowth, liveBufferBytes } from './helpers/memory.ts'

const SIZE = 50 * MB
// Far below SIZE: a gateway that buffered a body would hold it all at some point.
const MAX_GROWTH = 16 * MB

/**
 * Calls `sample` each time a transfer's byte count passes another 16 MB: a gateway that buffered
 * the body holds it all (upload) or had read it all (download) by the later steps.
 */
const atSteps = (sample: () => void) => {
  let next = 16 * MB
  return (bytes: number) => { if (bytes >= next) { next += 16 * MB; sample() } }
}

/** Hashes the request body it receives; answers with the hash and the framing it saw. */
async function hashingUpstream (req: IncomingMessage, res: ServerResponse): Promise<void> {
  const sha = await sha256(req)
  res.end(JSON.stringify({ sha, contentLength: req.headers['content-length'], transferEncoding: req.headers['transfer-encoding'] }))
}

const expected = patternSha(SIZE)

t.test('a 50 MB request body streams through to the upstream', async t => {
  const gw = await catchAllGateway(t, (req, res) => { void hashingUpstream(req, res) })
  for (const framing of ['content-length', 'chunked'] as const) {
    const headers = framing === 'content-length' ? { 'content-length': String(SIZE) } : {}
    const growth = bufferGrowth()
    const res = await request(`${gw.url}/upload`, { method: 'POST', headers, body: Readable.from(patternBody(SIZE, atSteps(growth.sample))) })
    const result = { status: res.statusCode, seen: await res.body.json() as Record<string, string | undefined> }
    growth.sample()
    const peak = growth.peak
    t.equal(result.status, 200, framing)
    t.equal(result.seen.sha, await expected, `${framing}: upstream hashed exactly the bytes sent`)
    if (framing === 'chunked') t.same([result.seen.contentLength, result.seen.transferEncoding], [undefined, 'chunked'], 'sent chunked upstream')
    else t.equal(result.seen.contentLength, String(SIZE), 'content-length kept')
    t.ok(peak < MAX_GROWTH, `${framing}: live buffer memory grew ${(peak / MB).toFixed(1)} MB, well under 50 MB`)
  }
})

t.test('a 50 MB response streams back chunk by chunk', async t => {
  const gw = await catchAllGateway(t, (_req, res) => { void writePattern(res, SIZE, { written: 0, waitingForDrain: false, finished: false }) })
  const growth = bufferGrowth()
  const res = await request(`${gw.url}/download`)
  const result = { status: res.statusCode, sha: await sha256(res.body, atSteps(growth.sample)) }
  growth.sample()
  const peak = growth.peak
  t.equal(result.status, 200, 'status')
  t.equal(result.sha, await expected, 'client hashed exactly the bytes the upstream wrote')
  t.ok(peak < MAX_GROWTH, `live buffer memory grew ${(peak / MB).toFixed(1)} MB, well under 50 MB`)
})

t.test('a slow-reading client holds the upstream back (backpressure)', async t => {
  const progress: WriteProgress = { written: 0, waitingForDrain: false, finished: false }
  const gw = await catchAllGateway(t, (_req, res) => { void writePattern(res, SIZE, progress) })
  const base = liveBufferBytes()
  const res = await request(`${gw.url}/download`)
  // The client reads nothing: the upstream must stall once the socket buffers along the way are full.
  const stalledAt = await settled(() => progress.written)
  t.ok(progress.waitingForDrain, 'upstream res.write() returned false and is waiting for drain')
  t.notOk(progress.finished, 'upstream could not finish writing')
  t.ok(stalledAt < SIZE / 2, `upstream stalled after ${(stalledAt / MB).toFixed(1)} MB of 50 MB`)
  const held = liveBufferBytes() - base
  t.ok(held < MAX_GROWTH, `gateway holds ${(held / MB).toFixed(1)} MB while stalled`)

  t.equal(await sha256(res.body), await expected, 'once the client reads, the whole body arrives intact')
  t.ok(progress.finished, 'upstream finished writing')
})

t.test('an upstream that does not read holds the client upload back (backpressure)', async t => {
  let startReading = () => {}
  const gw = await catchAllGateway(t, (req, res) => { startReading = () => { void hashingUpstream(req, res) } })
  let produced = 0
  const pending = request(`${gw.url}/upload`, { method: 'POST', body: Readable.from(patternBody(SIZE, n => { produced = n })) })
  const stalledAt = await settled(() => produced)
  t.ok(stalledAt < SIZE / 2, `client upload stalled after ${(stalledAt / MB).toFixed(1)} MB of 50 MB`)

  startReading()
  const res = await pending
  t.equal(res.statusCode, 200, 'status')
  t.equal((await res.body.json() as { sha: string }).sha, await expected, 'the upstream received the whole body once it read')
})
