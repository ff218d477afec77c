import type { Metric, Registry } from 'prom-client'

/** A bucket's latest observation and the trace it belongs to (an OpenMetrics exemplar). */
interface ExemplarSlot { traceId: string, value: number, at: number }

/** One label value's series: plain numbers, updated in place (no allocation per observation). */
export class HistogramSeries {
  readonly #bounds: readonly number[]
  /** Per bucket (not cumulative), the last one +Inf. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  /** Per bucket, when exemplars are on: filled in place. */
  readonly exemplars: ExemplarSlot[] | undefined

  constructor (bounds: readonly number[], exemplars: boolean) {
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
    this.exemplars = exemplars ? Array.from({ length: bounds.length + 1 }, () => ({ traceId: '', value: 0, at: 0 })) : undefined
  }

  #bucket (value: number): number {
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    return i
  }

  observe (value: number): void {
    const i = this.#bucket(value)
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }

  /** Makes `value` (observed) its bucket's exemplar, with `traceId` (when exemplars are on). */
  exemplar (value: number, traceId: string): void {
    const slot = this.exemplars?.[this.#bucket(value)]
    if (slot === undefined) return
    slot.traceId = traceId
    slot.value = value
    slot.at = Date.now()
  }
}

/**
 * A histogram with one label whose series are plain counters, read by prom-client at scrape time.
 * prom-client's own Histogram allocates on every observe (label objects, a hash string, a
 * closure) and reaches exemplars through an object argument per call: the request path pays for
 * neither here. Exposed as prom-client's histograms are (same samples, same JSON for the cluster
 * aggregator), with the latest exemplar of each bucket (`trace_id`) in OpenMetrics.
 */
export class BucketHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #label: string
  readonly #bounds: readonly number[]
  readonly #exemplars: boolean
  #series = new Map<string, HistogramSeries>()

  constructor (options: { name: string, help: string, label: string, buckets: readonly number[], exemplars?: boolean, registry: Registry }) {
    this.name = options.name
    this.help = options.help
    this.#label = options.label
    this.#bounds = [...options.buckets].sort((a, b) => a - b)
    this.#exemplars = options.exemplars ?? false
    options.registry.registerMetric(this as unknown as Metric)
  }

  /** The series of `labelValue`, created on first use (look it up once and keep it: RouteMetrics does, at a route's first request). */
  series (labelValue: string): HistogramSeries {
    let s = this.#series.get(labelValue)
    if (s === undefined) this.#series.set(labelValue, s = new HistogramSeries(this.#bounds, this.#exemplars))
    return s
  }

  reset (): void { this.#series = new Map() }

  /** Drops the series whose value of `label` (when it is this histogram's label) `keep` refuses. */
  retain (label: string, keep: (value: string) => boolean): void {
    if (label !== this.#label) return
    for (const value of this.#series.keys()) if (!keep(value)) this.#series.delete(value)
  }

  /** prom-client's metric JSON: cumulative `_bucket` samples (le first), `_sum`, `_count`. */
  get (): { name: string, help: string, type: 'histogram', aggregator: 'sum', values: Array<Record<string, unknown>> } {
    const values: Array<Record<string, unknown>> = []
    const bucket = `${this.name}_bucket`
    for (const [labelValue, s] of this.#series) {
      let cumulative = 0
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += s.counts[i] as number
        const e = s.exemplars?.[i]
        values.push({
          labels: { le: i < this.#bounds.length ? this.#bounds[i] : '+Inf', [this.#label]: labelValue },
          value: cumulative,
          metricName: bucket,
          ...(e === undefined || e.traceId === '' ? {} : { exemplar: { labelSet: { trace_id: e.traceId }, value: e.value, timestamp: e.at / 1000 } })
        })
      }
      values.push({ labels: { [this.#label]: labelValue }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { [this.#label]: labelValue }, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}
