const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/**
 * 32-bit FNV-1a over the string's UTF-16 code units, finished with murmur3's avalanche step so
 * that keys differing in one character land far apart on the ring. Fast, allocation-free and
 * stable across processes and versions (every worker maps a key to the same target).
 */
export function hash32 (s: string): number {
  return avalanche(fnv1a(s))
}

/** The FNV-1a state after `s` (before the avalanche step). */
export function fnv1a (s: string): number {
  let h = FNV_OFFSET
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return h
}

/** hash32(`${prefix}#${n}`) for a whole n >= 0, from fnv1a(prefix), without building the string. */
export function hash32Numbered (prefixState: number, n: number): number {
  let h = Math.imul(prefixState ^ 0x23, FNV_PRIME) // '#'
  let unit = 1
  while (unit * 10 <= n) unit *= 10
  for (; unit >= 1; unit /= 10) h = Math.imul(h ^ (0x30 + Math.floor(n / unit) % 10), FNV_PRIME)
  return avalanche(h)
}

function avalanche (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
