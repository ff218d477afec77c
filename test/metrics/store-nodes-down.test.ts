import t from 'tap'
import { Metrics } from '../../src/metrics/metrics.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'

t.test('portcullis_store_nodes_down: the Cluster nodes a store cannot reach, for Cluster stores alone', async t => {
  const metrics = new Metrics({ defaultMetrics: false })
  let down: StoreSnapshot['nodesDown'] = []
  metrics.watchStores(() => [
    { name: 'cluster', type: 'redis', state: 'up', nodesDown: down } as unknown as StoreSnapshot,
    { name: 'memory', type: 'memory', state: 'up' } as unknown as StoreSnapshot
  ])
  t.match(await metrics.exposition('prometheus'), /^portcullis_store_nodes_down\{store="cluster"\} 0$/m)
  down = [{ node: '10.0.0.1:6379', error: 'Socket timeout' }, { node: '10.0.0.2:6379', error: 'ECONNREFUSED' }]
  const text = await metrics.exposition('prometheus')
  t.match(text, /^portcullis_store_nodes_down\{store="cluster"\} 2$/m)
  t.notMatch(text, /portcullis_store_nodes_down\{store="memory"\}/, 'no series for a store without nodes')
  t.match(text, /^portcullis_store_up\{store="cluster"\} 1$/m, 'the store stays up')
})
