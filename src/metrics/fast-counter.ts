import { Counter } from 'prom-client'

type Labels = Record<string, string | number>
interface Entry { value: number, labels: Labels }
/** What prom-client's Metric keeps (not in its types). */
interface Internals { name: string, hashMap: Record<string, Entry>, labelNames: string[], sortedLabelNames: string[] }

/**
 * prom-client's Counter whose label children are cheap to increment. prom-client's child
 * (`labels(...).inc()`) builds the label hash string and validates the labels on every call; a
 * child of this one does both once, in labels(), then only adds to its entry. Resolve children
 * at config load and keep them (RouteMetrics and plugins do). Same entries as prom-client's own
 * (its hash format), so samples, JSON for the workers' aggregation, reset and remove are unchanged.
 */
export class FastCounter<L extends string = string> extends Counter<L> {
  override labels (...args: string[] | [Partial<Record<L, string | number>>]): Counter.Internal {
    const self = this as unknown as Internals
    const first = args[0]
    const labels: Labels = typeof first === 'object' ? { ...first } as Labels : {}
    if (typeof first !== 'object') {
      if (args.length !== self.labelNames.length) throw new Error(`Invalid number of arguments (${args.length}) for ${self.name}: expected ${self.labelNames.length}`)
      self.labelNames.forEach((name, i) => { labels[name] = args[i] as string | number })
    }
    for (const name in labels) if (!self.labelNames.includes(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${JSON.stringify(self.labelNames)}`)
    const hash = self.sortedLabelNames.map(k => labels[k] === undefined ? '' : `${k}:${labels[k]},`).join('')
    return {
      inc: (value = 1) => {
        if (!(value >= 0 && value < Infinity)) throw new TypeError(`Value is not a valid counter increment: ${value}`)
        // Looked up each time: reset() replaces the map.
        const e = self.hashMap[hash]
        if (e !== undefined) e.value += value
        else self.hashMap[hash] = { value, labels }
      }
    }
  }
}
