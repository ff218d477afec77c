import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { FastCounter } from '../../src/metrics/fast-counter.ts'

// FastCounter against prom-client's own Counter fed the same increments: the same exposition.
t.test('the same samples as prom-client\'s Counter, through children, inc(labels) and positional labels', async t => {
  const ours = new Registry()
  const theirs = new Registry()
  const f = new FastCounter({ name: 'x_total', help: 'x', labelNames: ['route', 'status'], registers: [ours] })
  const p = new Counter({ name: 'x_total', help: 'x', labelNames: ['route', 'status'], registers: [theirs] })
  const child = f.labels('a', '200')
  child.inc()
  child.inc(2)
  f.inc({ status: '200', route: 'a' }) // prom-client's own path: the same series as the child's
  f.labels({ route: 'b "q"', status: '404' }).inc(5)
  for (const c of [p.labels('a', '200'), p.labels('a', '200'), p.labels('a', '200'), p.labels('a', '200')]) c.inc()
  p.labels({ route: 'b "q"', status: '404' }).inc(5)
  t.equal(await ours.metrics(), await theirs.metrics())
  t.match(await ours.metrics(), /^x_total\{route="a",status="200"\} 4$/m)
})

t.test('a kept child still counts after reset(), and remove() drops its series', async t => {
  const registry = new Registry()
  const f = new FastCounter({ name: 'y_total', help: 'y', labelNames: ['result'], registers: [registry] })
  const allowed = f.labels('allowed')
  allowed.inc(3)
  f.reset()
  allowed.inc()
  t.match(await registry.metrics(), /^y_total\{result="allowed"\} 1$/m)
  f.remove('allowed')
  t.notMatch(await registry.metrics(), /result="allowed"/)
  allowed.inc()
  t.match(await registry.metrics(), /^y_total\{result="allowed"\} 1$/m)
})

t.test('bad labels and values are refused as prom-client refuses them', async t => {
  const f = new FastCounter({ name: 'z_total', help: 'z', labelNames: ['a', 'b'], registers: [] })
  t.throws(() => f.labels('only-one'), /Invalid number of arguments \(1\)/)
  t.throws(() => f.labels({ c: 'x' } as never), /"c" is not included/)
  const child = f.labels('1', '2')
  t.throws(() => child.inc(-1), /not a valid counter increment/)
  t.throws(() => child.inc(Number.NaN), /not a valid counter increment/)
  t.throws(() => child.inc(Infinity), /not a valid counter increment/)
})
