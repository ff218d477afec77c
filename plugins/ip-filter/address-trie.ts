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
    const { bytes, length } = range(entry)
    let node = 0
    for (let i = 0; i < length; i++) {
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
    return this.#holds(bytes, 128)
  }

  /**
   * Whether one range holds every address `entry` (a valid address or range, as add takes) holds,
   * as has() matches them: `10.0.0.0/7` covers `10.6.6.6` and `::ffff:10.0.0.0/104`, `::/0` no IPv4 range.
   */
  covers (entry: string): boolean {
    const { bytes, length } = range(entry)
    return this.#holds(bytes, length)
  }

  /** Whether a range ends within the first `length` bits of `bytes`: one holding all they start. */
  #holds (bytes: Uint8Array, length: number): boolean {
    // Ranges ending above the mapped prefix are IPv6 ones: an IPv4 address skips them. (A valid
    // range shorter than /96 never reads as mapped: its bit 95 is clear.)
    const from = isMapped(bytes) ? MAPPED_BITS : 0
    let node = 0
    for (let i = 0; i < length; i++) {
      if (this.#end[node] === true && i >= from) return true
      node = (bit(bytes, i) === 0 ? this.#zero : this.#one)[node] as number
      if (node === 0) return false
    }
    return this.#end[node] === true
  }
}

/** A valid address or range as its 16 bytes (IPv4 mapped) and the bits of them it fixes. */
function range (entry: string): { bytes: Uint8Array, length: number } {
  const [address, prefix] = entry.split('/') as [string, string | undefined]
  const bytes = new Uint8Array(16)
  parseIp(address, bytes)
  const bits = isIPv4(address) ? 32 : 128
  return { bytes, length: (bits === 32 ? MAPPED_BITS : 0) + (prefix === undefined ? bits : Number(prefix)) }
}

function isMapped (bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

function bit (bytes: Uint8Array, i: number): number {
  return ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1
}
