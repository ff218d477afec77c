import { isIP } from 'node:net'
import { parseIp } from '../shared/parse-ip.ts'

/** Bits of the IPv4-mapped prefix, ::ffff:0:0/96. */
const MAPPED_BITS = 96

/**
 * A set of addresses and CIDR ranges (IPv4 and IPv6; IPv4 kept as IPv4-mapped IPv6, so a mapped
 * client address matches an IPv4 rule) as a binary trie: a lookup walks at most 128 bits, however
 * long the list. The families stay apart: an IPv4 address is held only by ranges inside
 * ::ffff:0:0/96 (IPv4 rules, mapped ones), never by a wider IPv6 one such as ::/0.
 */
export class AddressTrie {
  // Node i's children are zero[i] and one[i] (0: none); end[i]: a range ends there.
  readonly #zero: number[] = [0]
  readonly #one: number[] = [0]
  readonly #end: boolean[] = [false]
  readonly #scratch = new Uint8Array(16)

  /** Adds `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `x::/n` (no bits set past n). Throws on anything else. */
  add (entry: string): void {
    // has() reads client addresses without their zone: a zoned rule would match every interface.
    if (entry.includes('%')) throw new Error(`"${entry}": a zone (%name) is not supported in a rule, it would match every interface; remove it`)
    const slash = entry.indexOf('/')
    const address = slash === -1 ? entry : entry.slice(0, slash)
    const family = isIP(address)
    const bits = family === 4 ? 32 : 128
    const written = slash === -1 ? String(bits) : entry.slice(slash + 1)
    const prefix = Number(written)
    if (family === 0 || !/^\d{1,3}$/.test(written) || prefix > bits) throw new Error(`"${entry}" is not an IPv4 or IPv6 address or CIDR range`)
    // Some tools read 010 as octal (8): the reader of the list cannot tell which was meant.
    if (written.length > 1 && written.startsWith('0')) throw new Error(`"${entry}": write the prefix length without a leading zero (/${prefix})`)
    const bytes = new Uint8Array(16)
    parseIp(address, bytes)
    const start = (family === 4 ? 96 : 0) + prefix
    // 10.0.0.5/8 would hold all of 10.0.0.0/8, where perhaps 10.0.0.5 alone was meant: nginx warns, this refuses.
    if (hostBitsSet(bytes, start)) {
      throw new Error(`"${entry}" has bits set past its prefix length: did you mean ${network(bytes, start, family)}/${prefix}, or ${address}/${bits}?`)
    }
    let node = 0
    for (let i = 0; i < start; i++) {
      const next = bit(bytes, i) === 0 ? this.#zero : this.#one
      if (next[node] === 0) {
        next[node] = this.#end.length
        this.#zero.push(0); this.#one.push(0); this.#end.push(false)
      }
      node = next[node] as number
    }
    this.#end[node] = true
  }

  /** Whether `address` is in a range; undefined when it is not an address. */
  has (address: string): boolean | undefined {
    const bytes = this.#scratch
    if (!parseIp(address, bytes)) return undefined
    // Ranges ending above the mapped prefix are IPv6 ones: an IPv4 address skips them.
    const from = isMapped(bytes) ? MAPPED_BITS : 0
    let node = 0
    for (let i = 0; i < 128; i++) {
      if (this.#end[node] === true && i >= from) return true
      node = (bit(bytes, i) === 0 ? this.#zero : this.#one)[node] as number
      if (node === 0) return false
    }
    return this.#end[node] === true
  }
}

function isMapped (bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

function hostBitsSet (bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < 128; i++) if (bit(bytes, i) === 1) return true
  return false
}

/** The address of `bytes` with its bits from `from` on cleared, written as its family is. */
function network (bytes: Uint8Array, from: number, family: number): string {
  const masked = bytes.map((b, i) => i * 8 >= from ? 0 : i * 8 + 8 <= from ? b : b & (0xff << (8 - (from - i * 8))))
  if (family === 4) return masked.subarray(12).join('.')
  if (isMapped(masked)) return `::ffff:${masked.subarray(12).join('.')}`
  const groups = Array.from({ length: 8 }, (_, i) => ((masked[2 * i] as number) << 8 | (masked[2 * i + 1] as number)).toString(16))
  // The WHATWG URL parser writes an IPv6 address in its shortest form (RFC 5952).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}

function bit (bytes: Uint8Array, i: number): number {
  return ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1
}
