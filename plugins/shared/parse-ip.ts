import { isIPv4 } from 'node:net'

/**
 * Writes the 16 bytes of an IPv4 (as IPv4-mapped IPv6, ::ffff:a.b.c.d) or IPv6 address into `out`.
 * Returns false for anything else. A zone (`%eth0`) is ignored. Allocation-free: it runs per request.
 */
export function parseIp (text: string, out: Uint8Array): boolean {
  out.fill(0)
  if (text.indexOf(':') === -1) {
    out[10] = out[11] = 0xff
    return parseV4(text, 0, text.length, out, 12)
  }
  const zone = text.indexOf('%')
  const end = zone === -1 ? text.length : zone
  const gap = text.indexOf('::')
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return false
  // An IPv4 part may only end the address (1.2.3.4:: is not one).
  const dot = text.indexOf('.')
  if (dot !== -1 && dot < gap) return false
  if (gap === -1) return parseGroups(text, 0, end, out, 0, 16)
  // Groups before the gap fill from the start, those after it from the end.
  const head = gap === 0 ? 0 : countGroups(text, 0, gap)
  const tail = gap + 2 === end ? 0 : countGroups(text, gap + 2, end)
  if (head + tail > 14) return false
  return (gap === 0 || parseGroups(text, 0, gap, out, 0, head)) && (tail === 0 || parseGroups(text, gap + 2, end, out, 16 - tail, tail))
}

/** Bytes that the groups in text[from, to) take: 2 per hex group, 4 for a trailing IPv4 one. */
function countGroups (text: string, from: number, to: number): number {
  let bytes = 2
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 58) bytes += 2
    else if (c === 46) return bytes + 2
  }
  return bytes
}

function parseGroups (text: string, from: number, to: number, out: Uint8Array, at: number, bytes: number): boolean {
  let i = from
  let o = at
  while (o < at + bytes) {
    let j = i
    let v = 0
    for (; j < to; j++) {
      const c = text.charCodeAt(j)
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : c === 46 ? -2 : -1
      if (d === -2) return o + 4 === at + bytes && parseV4(text, i, to, out, o)
      if (d < 0) break
      v = v * 16 + d
    }
    if (j === i || j - i > 4) return false
    out[o++] = v >> 8
    out[o++] = v & 0xff
    if (o === at + bytes) return j === to
    if (text.charCodeAt(j) !== 58) return false
    i = j + 1
  }
  return false
}

function parseV4 (text: string, from: number, to: number, out: Uint8Array, at: number): boolean {
  if (!isIPv4(from === 0 && to === text.length ? text : text.slice(from, to))) return false
  let v = 0
  let o = at
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) { out[o++] = v; v = 0 } else v = v * 10 + c - 48
  }
  out[o] = v
  return true
}
