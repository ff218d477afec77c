import { Type } from '@sinclair/typebox'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** A duration in config: a number of milliseconds, or a string such as `500ms`, `5s`, `2m`, `1h`. */
export const Duration = Type.Union(
  [Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_RE.source })],
  { errorMessage: 'must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m' }
)

export function toMs (value: number | string): number {
  if (typeof value === 'number') return value
  const m = DURATION_RE.exec(value)
  if (m === null) throw new TypeError(`not a duration: ${value}`)
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS])
}
