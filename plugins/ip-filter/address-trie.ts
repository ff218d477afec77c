import { isIPv4 } from 'node:net'
import { addressRangeProblem } from '../../src/index.ts'
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
    const problem = addressRangeProblem(entry)
    if (problem !== undefined) throw new Error(problem)
    const [address, prefix] = entry.split('/') as [string, string | undefined]
    const bytes = new Uint8Array(16)
    parseIp(address, bytes)
    const bits = isIPv4(address) ? 32 : 128
    const start = (bits === 32 ? MAPPED_BITS : 0) + (prefix === undefined ? bits : Number(prefix))
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

function bit (bytes: Uint8Array, i: number): number {
  return ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1
}
