import { parseIp } from './parse-ip.ts'

const address = new Uint8Array(16)

/** An IPv6 address (16 bytes) as RFC 5952 text: hex groups in lower case without leading zeros, the first longest run of zero groups as ::. */
function formatV6 (b: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((b[i] as number) << 8 | (b[i + 1] as number))
  let at = -1
  let run = 1
  for (let i = 0; i < 8;) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > run) { at = i; run = j - i }
    i = j === i ? i + 1 : j
  }
  const hex = (list: number[]) => list.map(g => g.toString(16)).join(':')
  return at === -1 ? hex(groups) : `${hex(groups.slice(0, at))}::${hex(groups.slice(at + run))}`
}

/**
 * A client address as keys hold it: IPv4 as it is, IPv4-mapped IPv6 (::ffff:1.2.3.4) as the IPv4
 * address, other IPv6 addresses as their network of `v6Prefix` bits (`2001:db8:1:2::/64`; the
 * address itself at 128): one client holds a whole /64, and would otherwise get a fresh counter
 * from each address of it. Anything else is kept as it is (the gateway's clientIp is always an address).
 */
export function addressKey (ip: string, v6Prefix: number): string {
  if (ip.indexOf(':') === -1 || !parseIp(ip, address)) return ip
  let mapped = address[10] === 0xff && address[11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) mapped = address[i] === 0
  if (mapped) return `${address[12]}.${address[13]}.${address[14]}.${address[15]}`
  for (let bit = v6Prefix; bit < 128; bit++) address[bit >> 3] = (address[bit >> 3] as number) & ~(0x80 >> (bit & 7))
  return v6Prefix === 128 ? formatV6(address) : `${formatV6(address)}/${v6Prefix}`
}
