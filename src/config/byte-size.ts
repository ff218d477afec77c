import { Type } from '@sinclair/typebox'

const UNITS: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 }
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)$/i

/** `minimum` as the error message says it: 1 byte, 1 KiB, 64 MiB. */
function sizeText (bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`
  return bytes === 1 ? '1 byte' : `${bytes} bytes`
}

/**
 * A size in config: a number of bytes, or a string such as `64KiB`, `10MB`, `1 GiB`, at least
 * `minimum` (default 0) either way: the string's size is checked by the minBytes keyword (see
 * validate.ts), so that `maxBytes: 1KB` is refused at its line like `maxBytes: 1000`.
 */
export const ByteSize = (options: { minimum?: number, default?: number | string, description: string }) => {
  const { minimum = 0, ...rest } = options
  return Type.Union(
    [Type.Integer({ minimum }), Type.String({ pattern: SIZE_RE.source.replace('(b|kb|kib|mb|mib|gb|gib)', '([bB]|[kKmMgG][iI]?[bB])'), minBytes: minimum })],
    { errorMessage: `must be a size${minimum > 0 ? ` of at least ${sizeText(minimum)}` : ''}: bytes as a number, or a string such as 512KiB, 10MB, 1GiB`, ...rest }
  )
}

/** The bytes of a size the schema accepted. */
export function toBytes (value: number | string): number {
  if (typeof value === 'number') return value
  const m = SIZE_RE.exec(value) as RegExpExecArray
  return Math.floor(Number(m[1]) * (UNITS[(m[2] as string).toLowerCase()] as number))
}

/** For the minBytes keyword: whether a size string is at least `minimum` bytes (a malformed one is the pattern's to report). */
export const atLeastBytes = (minimum: number, value: string): boolean => !SIZE_RE.test(value) || toBytes(value) >= minimum
