import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseConfig } from '../src/config/load.ts'
import { gatewayYaml } from './reload/helpers.ts'

const API = new URL('../src/index.ts', import.meta.url).href
const ROUTES = 100
// A top-level plugin saying a fresh 1 MB message of each route; the heap, after full GCs, read at
// the first route's and the last route's hook: what the warnings of the routes before still hold.
const BIG = `import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { definePlugin, Type } from '${API}'
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed }
export const heaps = []
export default definePlugin({
  name: 'big', priority: 10,
  schema: Type.Object({ apiKey: Type.String(), mode: Type.String() }),
  setup () { return {} },
  warnings (config, ctx) {
    if (ctx.routeName === 'r1' || ctx.routeName === 'r${ROUTES}') heaps.push(heap())
    return ['apiKey ' + config.apiKey + ' ' + 'y'.repeat(1024 * 1024)]
  }
})
`

// Each message was kept as a slice of the hook's string: V8 kept the whole string alive for it,
// 1 MB a route (1,000 routes: 1.2 GB to validate).
t.test('a plugin\'s long warnings are not held whole while the routes\' are gathered', async t => {
  const dir = t.testdir({ 'big.mjs': BIG })
  const routes = Array.from({ length: ROUTES }, (_, i) => `  - { name: r${i + 1}, match: { path: /r${i + 1} }, upstream: a }`).join('\n')
  const loaded = await parseConfig(gatewayYaml({ a: ['http://127.0.0.1:1'] }, routes, 'loadPlugins: [ ./big.mjs ]\nplugins:\n  big: { apiKey: "${VENDOR_API_KEY}", mode: warn }'),
    join(dir, 'gw.yaml'), { VENDOR_API_KEY: 'sk_live_0123456789abcdef' })
  t.match(loaded.warnings?.[0]?.message, /^routes "r1", "r2", "r3" and 97 more: apiKey \[redacted\] y+…$/)
  const { heaps } = await import(pathToFileURL(join(dir, 'big.mjs')).href) as { heaps: number[] }
  t.equal(heaps.length, 2)
  const growth = (heaps[1] as number) - (heaps[0] as number)
  // Kept as copies: ~1 KB a route.
  t.ok(growth < 20e6, `${Math.round(growth / 1e6)} MB held over ${ROUTES} routes`)
})
