import t from 'tap'
import { clusterStores } from '../../src/workers/cluster-plugins.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'

// The merge alone: what two workers' GET /stores answers make for the gateway's.
const pool = (answers: Array<{ pid: number, stores: StoreSnapshot[] }>) =>
  ({ servingPids: answers.map(a => a.pid), pids: answers.map(a => a.pid), stores: async () => answers }) as unknown as WorkerPool

t.test('workers: Redis Cluster nodes any worker found down are all listed, each once', async t => {
  const store = (nodesDown: StoreSnapshot['nodesDown']) => ({ name: 'shared', type: 'redis', state: 'up', nodesDown }) as unknown as StoreSnapshot
  const merged = await clusterStores(pool([
    { pid: 1, stores: [store([{ node: '10.0.0.2:6379', error: 'Socket timeout' }])] },
    { pid: 2, stores: [store([{ node: '10.0.0.1:6379', error: 'ECONNREFUSED' }, { node: '10.0.0.2:6379', error: 'ECONNRESET' }])] }
  ]))
  t.same(merged.stores[0]?.nodesDown, [{ node: '10.0.0.1:6379', error: 'ECONNREFUSED' }, { node: '10.0.0.2:6379', error: 'Socket timeout' }])
  const none = await clusterStores(pool([{ pid: 1, stores: [store([])] }, { pid: 2, stores: [store([])] }]))
  t.same(none.stores[0]?.nodesDown, [], 'none down: an empty list')
})
