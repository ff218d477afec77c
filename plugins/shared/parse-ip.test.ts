import t from 'tap'
import { isIPv4 } from 'node:net'
import ipaddr from 'ipaddr.js'
import { parseIp } from './parse-ip.ts'

// A reproducible stream of pseudo-random numbers (a linear congruential generator). Math.imul: a
// plain product loses its low bits past 2^53, and the stream fell to multiples of 2^k: every
// rnd(2) was 0, so only IPv4 addresses were generated. An LCG's low bits repeat soon: the high ones are used.
let seed = 42
const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; return (seed >>> 8) % n }

const group = () => { const s = rnd(0x10000).toString(16).slice(0, 1 + rnd(4)); return rnd(2) === 1 ? s.toUpperCase() : s }
const v4 = () => [0, 0, 0, 0].map(() => rnd(4) === 0 ? rnd(10) : rnd(256)).join('.')

/** An IPv4 address, or IPv6 groups with or without a gap or a trailing IPv4 part. */
function address (): string {
  if (rnd(4) === 0) return v4()
  const groups = Array.from({ length: 1 + rnd(8) }, group)
  if (rnd(3) === 0) groups[groups.length - 1] = v4()
  let s = groups.join(':')
  if (rnd(2) === 1) { const cut = rnd(groups.length + 1); s = groups.slice(0, cut).join(':') + '::' + groups.slice(cut).join(':') }
  return s
}

/** A zone now and then (after the damage: parseIp ignores what follows a `%`). */
const zoned = (s: string) => s.includes(':') && rnd(8) === 0 ? s + '%eth' + rnd(3) : s

/** The address, or one character inserted or removed, or a colon added. */
function damaged (s: string): string {
  const i = rnd(s.length + 1)
  switch (rnd(5)) {
    case 0: return s.slice(0, i) + ':.g0/ -F'.charAt(rnd(8)) + s.slice(i)
    case 1: return s.slice(0, i) + s.slice(i + 1)
    case 2: return s + ':'
    default: return s
  }
}

/**
 * ipaddr.js's reading of the address, as 16 bytes in hex, with dotted quads strict (as net.isIPv4)
 * in IPv6 too, and `::a.b.c.d` IPv4-compatible (RFC 4291 2.5.5.1), not mapped as ipaddr.js reads it.
 */
function reference (s: string): string {
  if (!s.includes(':')) return ipaddr.IPv4.isValidFourPartDecimal(s) ? Buffer.from(ipaddr.IPv4.parse(s).toIPv4MappedAddress().toByteArray()).toString('hex') : 'invalid'
  const address = s.split('%')[0] as string
  const last = address.slice(address.lastIndexOf(':') + 1)
  if (!ipaddr.IPv6.isValid(s) || (last.includes('.') && !isIPv4(last))) return 'invalid'
  const bytes = ipaddr.IPv6.parse(s).toByteArray()
  if (/^::[\d.]+$/.test(address)) bytes[10] = bytes[11] = 0
  return Buffer.from(bytes).toString('hex')
}

t.test('parseIp reads 20,000 generated addresses, valid and damaged, as ipaddr.js does', async t => {
  const out = new Uint8Array(16)
  const differing: string[] = []
  let valid = 0
  for (let n = 0; n < 20_000; n++) {
    const s = zoned(damaged(address()))
    const ours = parseIp(s, out) ? Buffer.from(out).toString('hex') : 'invalid'
    const theirs = reference(s)
    if (ours !== 'invalid') valid++
    if (ours !== theirs) differing.push(`${JSON.stringify(s)}: ${ours}, ipaddr.js ${theirs}`)
  }
  t.same(differing.slice(0, 10), [], `${differing.length} addresses read differently`)
  t.ok(valid > 5_000 && valid < 15_000, `both kinds were generated (${valid} valid)`)
})

t.test('an IPv4 part only ends an address', async t => {
  const out = new Uint8Array(16)
  const read = (s: string) => parseIp(s, out) ? Buffer.from(out).toString('hex') : 'invalid'
  t.equal(read('1::1.2.3.4'), '00010000000000000000000001020304')
  t.equal(read('::1.2.3.4'), '00000000000000000000000001020304', 'IPv4-compatible, not mapped')
  t.equal(read('1.2.3.4::'), 'invalid')
  t.equal(read('5:1.2.3.4::'), 'invalid')
  t.equal(read('1.2.3.4::5'), 'invalid')
})
