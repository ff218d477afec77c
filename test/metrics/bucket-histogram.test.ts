import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { BucketHistogram } from '../../src/metrics/bucket-histogram.ts'

// BucketHistogram against prom-client's own Histogram fed the same values: the same exposition.
t.test('the same samples as prom-client\'s Histogram, bounds inclusive (le), +Inf, sum and count', async t => {
  const ours = new Registry()
  const theirs = new Registry()
  const buckets = [0.1, 0.5, 1]
  const h = new BucketHistogram({ name: 'x_seconds', help: 'x', label: 'route', buckets, exemplars: true, registry: ours })
  const p = new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['route'], buckets, registers: [theirs] })
  const values: Array<[string, number]> = [['a', 0.05], ['a', 0.1], ['a', 0.3], ['a', 1], ['a', 7], ['b "q"', 0.5]]
  for (const [route, v] of values) {
    h.series(route).observe(v)
    p.labels(route).observe(v)
  }
  t.equal(await ours.metrics(), await theirs.metrics())
  const text = await ours.metrics()
  t.match(text, /^x_seconds_bucket\{le="0.1",route="a"\} 2$/m, 'a value on a bound counts in that bucket')
  t.match(text, /^x_seconds_bucket\{le="\+Inf",route="a"\} 5$/m)
  t.match(text, /^x_seconds_sum\{route="a"\} 8.45$/m)
})

t.test('exemplars: the latest observation of each bucket, only where one fell', async t => {
  const registry = new Registry()
  const h = new BucketHistogram({ name: 'y_seconds', help: 'y', label: 'route', buckets: [0.1, 1], exemplars: true, registry })
  const s = h.series('r')
  for (const [v, id] of [[0.05, 'a'], [0.07, 'b'], [3, 'c']] as const) {
    s.observe(v)
    s.exemplar(v, id.repeat(32))
  }
  const values = h.get().values.filter(v => v.metricName === 'y_seconds_bucket')
  t.same(values.map(v => (v.exemplar as { labelSet?: unknown } | undefined)?.labelSet), [{ trace_id: 'b'.repeat(32) }, undefined, { trace_id: 'c'.repeat(32) }])
  t.same(values.map(v => (v.exemplar as { value?: number } | undefined)?.value), [0.07, undefined, 3])
  const plain = new BucketHistogram({ name: 'z_seconds', help: 'z', label: 'route', buckets: [1], registry })
  plain.series('r').observe(0.5)
  plain.series('r').exemplar(0.5, 'd'.repeat(32))
  t.notOk(plain.get().values.some(v => v.exemplar !== undefined), 'none when exemplars are off')
})
