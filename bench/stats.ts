/** Summary of a sample: the median and the range. */
export interface Spread { median: number, min: number, max: number }

export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** NaN throughout for an empty sample (JSON writes it as null). */
export function spread (values: readonly number[]): Spread {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN }
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}
