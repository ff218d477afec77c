import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { request } from 'undici'
import { cpuTime, startChild, stopChildren, type Child } from './children.ts'
import { LOAD_GENERATOR, slice, type SliceResult } from './load.ts'
import { parseOptions, type BenchOptions } from './options.ts'
import { spread } from './stats.ts'
import { hashPassword } from '../plugins/basic-auth/password-hash.ts'

const CASES = { plain: '/plain/items/42', jwt: '/jwt/items/42', 'jwt-nocache': '/jwt-nocache/items/42', basic: '/basic/items/42' } as const
type Case = keyof typeof CASES
interface Slice extends SliceResult { case: Case, cpuUsPerRequest: number }

/**
 * The cost of authentication: one Portcullis process, a plain route, two RS256 jwt-auth routes (with
 * and without the verified-token cache) and a basic-auth route (one user, the default scrypt cost,
 * the same password each time: checked once, then remembered) to the same upstream, measured in
 * alternating slices.
 * Each jwt slice is compared with the mean of the plain slices just before and after it.
 */
async function main (o: BenchOptions): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const token = await new SignJWT({ sub: 'bench-client', aud: 'bench' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('2h').sign(privateKey)
  const password = 'bench-password-0123456789'
  const headers: Record<Case, Record<string, string>> = {
    plain: {},
    jwt: { authorization: `Bearer ${token}` },
    'jwt-nocache': { authorization: `Bearer ${token}` },
    basic: { authorization: `Basic ${Buffer.from(`bench:${password}`).toString('base64')}` }
  }
  const upstream = await startChild('upstream', { env: { BENCH_SIZE: String(o.size) } })
  const logFd = openSync(o.log, 'w')
  let gateway: Child
  try {
    gateway = await startChild('portcullis-auth', { env: { BENCH_UPSTREAM: upstream.url, BENCH_JWT_PEM: await exportSPKI(publicKey), BENCH_BASIC_HASH: await hashPassword(password) }, stdout: logFd })
  } finally {
    closeSync(logFd)
  }
  for (const [c, path] of Object.entries(CASES) as Array<[Case, string]>) {
    const res = await request(gateway.url + path, { headers: headers[c] })
    const body = await res.body.arrayBuffer()
    if (res.statusCode !== 200 || body.byteLength !== o.size) throw new Error(`${path} answered ${res.statusCode} with ${body.byteLength} bytes`)
  }
  const measure = async (c: Case, seconds: number): Promise<Slice> => {
    const before = await cpuTime(gateway)
    const s = await slice(gateway.url + CASES[c], seconds, o.connections, headers[c])
    if (s.failures > 0) throw new Error(`${c}: ${s.failures} failed requests in one slice`)
    return { case: c, ...s, cpuUsPerRequest: (await cpuTime(gateway) - before) / s.requests }
  }
  for (const c of Object.keys(CASES) as Case[]) if (o.warmup > 0) await measure(c, o.warmup)
  const order: Case[] = ['plain']
  for (let i = 0; i < o.rounds; i++) order.push('jwt', 'plain', 'jwt-nocache', 'plain', 'basic', 'plain')
  const slices: Slice[] = []
  for (const [i, c] of order.entries()) {
    const s = await measure(c, o.slice)
    slices.push(s)
    console.log(`slice ${i + 1}/${order.length}: ${c} ${Math.round(s.rps)} req/s p99 ${s.p99.toFixed(2)} ms cpu ${Math.round(s.cpuUsPerRequest)} µs/req`)
  }
  await stopChildren()
  const ratio = (c: Case, metric: (s: Slice) => number) => spread(slices.flatMap((s, i) => {
    if (s.case !== c) return []
    const before = slices.slice(0, i).findLast(x => x.case === 'plain')
    const after = slices.slice(i + 1).find(x => x.case === 'plain')
    return before === undefined || after === undefined ? [] : [metric(s) / ((metric(before) + metric(after)) / 2)]
  }))
  const rps = (s: Slice) => s.rps
  const efficiency = (s: Slice) => 1e6 / s.cpuUsPerRequest
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    loadGenerator: LOAD_GENERATOR,
    options: o,
    throughput: { jwtCachedOverPlain: ratio('jwt', rps), jwtUncachedOverPlain: ratio('jwt-nocache', rps), basicOverPlain: ratio('basic', rps) },
    efficiency: { jwtCachedOverPlain: ratio('jwt', efficiency), jwtUncachedOverPlain: ratio('jwt-nocache', efficiency), basicOverPlain: ratio('basic', efficiency) },
    goal: { jwtCachedOverPlain: 0.85, basicOverPlain: 0.85 },
    slices
  }
  const f = (x: { median: number, min: number, max: number }) => `${x.median.toFixed(2)} (range ${x.min.toFixed(2)}-${x.max.toFixed(2)})`
  console.log(`\nNode ${process.version}, ${o.connections} connections, ${o.size} B responses, ${o.slice} s slices, ${o.rounds} rounds, ${LOAD_GENERATOR}`)
  console.log(`throughput jwt-auth (RS256, cached) / plain:   ${f(report.throughput.jwtCachedOverPlain)}  goal >= 0.85: ${report.throughput.jwtCachedOverPlain.median >= 0.85 ? 'met' : 'NOT met'}`)
  console.log(`throughput jwt-auth (RS256, no cache) / plain: ${f(report.throughput.jwtUncachedOverPlain)}`)
  console.log(`throughput basic-auth (a pair checked before) / plain: ${f(report.throughput.basicOverPlain)}  goal >= 0.85: ${report.throughput.basicOverPlain.median >= 0.85 ? 'met' : 'NOT met'}`)
  console.log(`CPU efficiency jwt cached / plain: ${f(report.efficiency.jwtCachedOverPlain)}; jwt no cache / plain: ${f(report.efficiency.jwtUncachedOverPlain)}; basic / plain: ${f(report.efficiency.basicOverPlain)}`)
  const out = o.quick ? undefined : 'bench/results/auth.json'
  if (out !== undefined) {
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n')
    console.log(`Results written to ${out}.`)
  }
}

try {
  const options = parseOptions(process.argv.slice(2), process.env)
  if (options === 'help') console.log('Usage: npm run bench:auth -- [--quick] [--warmup S] [--slice S] [--rounds N] [--connections N] [--size BYTES] [--log FILE]')
  else await main(options)
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  await stopChildren()
}
