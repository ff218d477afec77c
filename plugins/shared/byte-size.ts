import { Type } from '@sinclair/typebox'

const UNITS: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 }
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)$/i

/** A size in config: a number of bytes, or a string such as `64KiB`, `10MB`, `1 GiB`. */
export const ByteSize = (options: { default: number | string, description: string }) => Type.Union(
  [Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_RE.source.replace('(b|kb|kib|mb|mib|gb|gib)', '([bB]|[kKmMgG][iI]?[bB])') })],
  { errorMessage: 'must be a size: bytes as a number, or a string such as 512KiB, 10MB, 1GiB', ...options }
)

export function toBytes (value: number | string): number {
  if (typeof value === 'number') return value
  const m = SIZE_RE.exec(value) as RegExpExecArray
  return Math.floor(Number(m[1]) * (UNITS[(m[2] as string).toLowerCase()] as number))
}
