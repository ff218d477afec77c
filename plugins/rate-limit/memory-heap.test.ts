import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import type { GatewayRequest } from '../../src/index.ts'
import { MemoryStore } from '../../src/stores/memory-store.ts'
import { decideScript } from './decide-script.ts'
import { KeyBuilder } from './keys.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed }

// A memory store's maxBytes bounds its heap only if an entry counts about what it takes.
t.test('a counter in a memory store takes about the bytes it is counted for, its key as the plugin builds it', async t => {
  const N = 50_000
  const keys = new KeyBuilder([['ip']])
  for (const algorithm of ['s', 'f', 't']) {
    const store = new MemoryStore('heap', { maxEntries: 2 * N, maxBytes: 1024 * 1024 * 1024 })
    // The first entry allocates the LRU's arrays for maxEntries: not a cost per entry.
    store.runNow(decideScript, ['first'], [algorithm, '100', '60000', '100'])
    const counted = store.snapshot().bytes as number
    const before = heap()
    for (let i = 0; i < N; i++) {
      // Each request's address is a string of its own, as the gateway's are.
      const req = { clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, consumer: undefined, headers: {} } as unknown as GatewayRequest
      store.runNow(decideScript, [keys.key(req, 0, `n:${algorithm}60000`)], [algorithm, '100', '60000', '100'])
    }
    const taken = (heap() - before) / N
    const countedEach = ((store.snapshot().bytes as number) - counted) / N
    // Measured (Node 20): 130 to 165 bytes for 124 counted; 260 to 320 while keys were kept as built (trees of their pieces).
    t.ok(taken < 1.5 * countedEach, `${algorithm}: ${Math.round(taken)} bytes of heap a counter, ${Math.round(countedEach)} counted`)
    await store.close()
  }
})
