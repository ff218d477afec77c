import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { Metrics } from '../../src/metrics/metrics.ts'
import { clusterMetricsText, type AppliedConfig } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'

// Two scrapes under way when a worker exited, both with its answer: each added its counts to the
// departed's, and every later scrape counted them twice.

type Answer = { pid: number, metrics: unknown[] }

async function answer (pid: number, n: number): Promise<Answer> {
  const registry = new Registry()
  new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['route'], registers: [registry] }).inc({ route: 'a' }, n)
  return { pid, metrics: await registry.getMetricsAsJSON() }
}

t.test('workers: scrapes that overlap a worker\'s exit count its answer once', async t => {
  // A pool whose answers the test gives: one pending question per scrape.
  const asked: Array<(answers: Answer[]) => void> = []
  const pool = { pids: [1, 2], metrics: () => new Promise<Answer[]>(resolve => asked.push(resolve)) }
  const applied = { hash: 'a', config: { routes: [{ name: 'a' }], upstreams: {} } } as unknown as AppliedConfig
  const scrape = () => clusterMetricsText(new Metrics({ defaultMetrics: false }), pool as unknown as WorkerPool, 'prometheus', applied)
  const value = (text: string) => Number(/^x_requests_total\{route="a"\} (\d+)$/m.exec(text)?.[1])

  const first = scrape()
  asked.shift()?.([await answer(1, 10), await answer(2, 10)])
  t.equal(value(await first), 20)

  // Worker 2 is stopped: two scrapes wait for it, worker 1 answered both; then worker 1 is killed
  // (worker 3 replaces it) and worker 2 resumes.
  const one = scrape()
  const two = scrape()
  const [answerOne, answerTwo] = asked.splice(0)
  pool.pids = [2, 3]
  answerOne?.([await answer(1, 10), await answer(2, 10)])
  t.equal(value(await one), 20, 'worker 1 departed: its counts kept once')
  answerTwo?.([await answer(1, 10), await answer(2, 10)])
  t.equal(value(await two), 20, 'the other scrape brought its answer again: not added again')

  const later = scrape()
  asked.shift()?.([await answer(2, 10), await answer(3, 1)])
  t.equal(value(await later), 21, 'later scrapes: worker 1\'s 10, worker 2\'s 10, worker 3\'s 1')

  // A pid the OS gives a new worker, once no scrape under way may hold the old one's answer, counts.
  pool.pids = [2, 3, 1]
  const reused = scrape()
  asked.shift()?.([await answer(2, 10), await answer(3, 1), await answer(1, 2)])
  t.equal(value(await reused), 23)
})
