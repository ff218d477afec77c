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
 * The first 12 bytes of the IPv6 prefixes whose last 4 bytes are an IPv4 client's address:
 * IPv4-mapped (::ffff:0:0/96, a dual-stack listener's IPv4 clients), SIIT's IPv4-translated
 * (::ffff:0:0:0/96, RFC 2765) and NAT64's well-known prefix (64:ff9b::/96, RFC 6052).
 */
const V4_PREFIXES: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
  [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0],
  [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]
]

/** NAT64's local-use prefix 64:ff9b:1::/48 (RFC 8215), its first 6 bytes. */
const LOCAL_NAT64 = [0, 0x64, 0xff, 0x9b, 0, 1]

const startsWith = (b: Uint8Array, prefix: readonly number[]): boolean => {
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false
  return true
}

/**
 * A client address as keys hold it: IPv4 as it is; an IPv4 address embedded in IPv6 (V4_PREFIXES:
 * IPv4 clients behind a translator, each with their own address) as that IPv4 address; other IPv6
 * addresses as their network of `v6Prefix` bits (`2001:db8:1:2::/64`; the address itself at 128):
 * one client holds a whole /64, and would otherwise get a fresh counter from each address of it.
 * In 64:ff9b:1::/48 the address whole: translated IPv4 clients too, but where their IPv4 address
 * sits depends on the prefix length the network chose, unknown here. Anything else is kept as it
 * is (the gateway's clientIp is always an address).
 */
export function addressKey (ip: string, v6Prefix: number): string {
  if (ip.indexOf(':') === -1 || !parseIp(ip, address)) return ip
  for (const prefix of V4_PREFIXES) if (startsWith(address, prefix)) return `${address[12]}.${address[13]}.${address[14]}.${address[15]}`
  if (startsWith(address, LOCAL_NAT64)) return formatV6(address)
  for (let bit = v6Prefix; bit < 128; bit++) address[bit >> 3] = (address[bit >> 3] as number) & ~(0x80 >> (bit & 7))
  return v6Prefix === 128 ? formatV6(address) : `${formatV6(address)}/${v6Prefix}`
}
