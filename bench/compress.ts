import autocannon from 'autocannon'
import { cpuTime, startChild, stopChildren, type Child } from './children.ts'

// `npm run bench:compress`: a 100 KiB JSON response through one gateway, plain and compressed, in
// alternating slices of the same run; throughput, bytes on the wire and gateway CPU per request.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = 10
const CASES = [
  { name: 'plain', path: '/plain/x', accept: undefined },
  { name: 'br (quality 4, default)', path: '/br/x', accept: 'br' },
  { name: 'gzip (level 6, default)', path: '/gzip/x', accept: 'gzip' },
  { name: 'br quality 11', path: '/br11/x', accept: 'br' },
  { name: 'gzip level 9', path: '/gzip9/x', accept: 'gzip' },
  // Cache hits: the stored body sent plain, and in br from compress's kept copy.
  { name: 'cache hit, plain', path: '/cached/x', accept: undefined },
  { name: 'cache hit, br', path: '/cached-br/x', accept: 'br' }
] as const

interface Totals { requests: number, seconds: number, bytes: number, cpuUs: number }

function run (url: string, accept: string | undefined): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers: accept === undefined ? {} : { 'accept-encoding': accept } },
      (err, r) => { if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err))); else resolve(r) })
  })
}

async function slice (gateway: Child, path: string, accept: string | undefined, into: Totals): Promise<void> {
  const before = await cpuTime(gateway)
  const r = await run(gateway.url + path, accept)
  if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${path}: failed requests`)
  into.requests += r.requests.total
  into.seconds += r.duration
  into.bytes += r.throughput.total
  into.cpuUs += await cpuTime(gateway) - before
}

const gateway = await startChild('compress-gateway')
try {
  const totals = CASES.map(() => ({ requests: 0, seconds: 0, bytes: 0, cpuUs: 0 }))
  await run(gateway.url + CASES[0].path, undefined) // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of CASES.entries()) await slice(gateway, c.path, c.accept, totals[i] as Totals)
  }
  const plain = totals[0] as Totals
  const rps = (t: Totals) => t.requests / t.seconds
  const perResponse = (t: Totals) => t.bytes / t.requests
  console.log(`Node ${process.version}, 100 KiB JSON (${String(gateway.info.bodyBytes)} bytes), ${CONNECTIONS} connections, ${ROUNDS} x ${SECONDS} s slices per case, alternating`)
  console.log('case                       req/s  vs plain  bytes/response  vs plain  gateway CPU µs/req')
  for (const [i, c] of CASES.entries()) {
    const t = totals[i] as Totals
    console.log(`${c.name.padEnd(25)} ${rps(t).toFixed(0).padStart(6)}  ${(rps(t) / rps(plain)).toFixed(2).padStart(8)}  ${perResponse(t).toFixed(0).padStart(14)}  ${(perResponse(t) / perResponse(plain)).toFixed(3).padStart(8)}  ${(t.cpuUs / t.requests).toFixed(0).padStart(18)}`)
  }
} finally {
  await stopChildren()
}
