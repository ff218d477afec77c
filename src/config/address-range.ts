import { isIP, isIPv4 } from 'node:net'

/**
 * Why `entry`, an IPv4 or IPv6 address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`), is refused,
 * or undefined. One reading for every list of addresses (server.trustProxy, ip-filter), so that an
 * entry means there what it says.
 */
export function addressRangeProblem (entry: string): string | undefined {
  // Addresses are matched without their zone: a zoned entry would match every interface.
  if (entry.includes('%')) return `"${entry}": a zone (%name) is not supported, it would match every interface; remove it`
  const slash = entry.indexOf('/')
  const address = slash === -1 ? entry : entry.slice(0, slash)
  const family = isIP(address)
  const bits = family === 4 ? 32 : 128
  const written = slash === -1 ? String(bits) : entry.slice(slash + 1)
  if (family === 4 && isIPv4(written)) {
    // proxy-addr reads 10.0.0.0/255.0.0.0; one way of writing a range is easier to check by eye.
    const ones = /^(1*)0*$/.exec(toNumber(written, 4).toString(2).padStart(32, '0'))?.[1]?.length
    if (ones !== undefined) return `"${entry}": write the prefix length, not a netmask (${dotted(cleared(toNumber(address, 4), 32, ones))}/${ones})`
  }
  const prefix = Number(written)
  if (family === 0 || !/^\d{1,3}$/.test(written) || prefix > bits) return `"${entry}" is not an IPv4 or IPv6 address or CIDR range`
  // Some tools read 010 as octal (8): the reader of the list cannot tell which was meant.
  if (written.length > 1 && written.startsWith('0')) return `"${entry}": write the prefix length without a leading zero (/${prefix})`
  const value = toNumber(address, family)
  // 10.0.0.5/8 holds all of 10.0.0.0/8, where perhaps 10.0.0.5 alone was meant (::ffff:1.2.3.4/97,
  // all of 0.0.0.0/1): nginx warns, this refuses.
  const net = cleared(value, bits, prefix)
  if (net !== value) return `"${entry}" has bits set past its prefix length: did you mean ${format(net, family)}/${prefix}, or ${address}/${bits}?`
  return undefined
}

/** An address (valid, without a zone) as a number of 32 or 128 bits. */
function toNumber (address: string, family: number): bigint {
  if (family === 4) return address.split('.').reduce((n, octet) => n << 8n | BigInt(octet), 0n)
  // The WHATWG URL parser writes an IPv6 address in hex groups only, shortest form (RFC 5952).
  const [head, tail] = new URL(`http://[${address}]/`).hostname.slice(1, -1).split('::') as [string, string | undefined]
  const groups = (text: string | undefined) => text === undefined || text === '' ? [] : text.split(':')
  const all = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill('0'), ...groups(tail)]
  return all.reduce((n, group) => n << 16n | BigInt(`0x${group}`), 0n)
}

/** `value` (of `bits` bits) with its bits past the first `prefix` cleared. */
function cleared (value: bigint, bits: number, prefix: number): bigint {
  const shift = BigInt(bits - prefix)
  return value >> shift << shift
}

const dotted = (n: bigint): string => [24n, 16n, 8n, 0n].map(s => (n >> s) & 0xffn).join('.')

/** An address as its family is written (IPv4-mapped as ::ffff:a.b.c.d). */
function format (value: bigint, family: number): string {
  if (family === 4) return dotted(value)
  if (value >> 32n === 0xffffn) return `::ffff:${dotted(value & 0xffffffffn)}`
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16))
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}
