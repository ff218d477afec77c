import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --profile DIR`): self time per area (our
 * code, each package, node internals), the functions with the most self time, and our functions
 * with the most inclusive time.
 * Usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

// (program) is native work with no JavaScript on the stack (event loop, I/O): busy, unlike (idle).
const IDLE = '(idle)'

function area (url: string): string {
  if (url === '') return '(native / V8)'
  if (url.startsWith('node:')) return 'node internals'
  if (!url.startsWith('file:')) return url.split(':')[0] as string // wasm: undici's llhttp parser
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1] as string
  return relative(process.cwd(), new URL(url).pathname).split('/').slice(0, 2).join('/')
}

function where (node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const name = functionName === '' ? '(anonymous)' : functionName
  if (url === '') return name
  if (!url.startsWith('file:')) return `${name}  ${url}:${lineNumber + 1}`
  const inPackage = url.lastIndexOf('node_modules/')
  if (inPackage !== -1) return `${name}  ${url.slice(inPackage + 13)}:${lineNumber + 1}`
  // Our own modules run as tsx compiled them, so V8's line numbers do not match the sources.
  return `${name}  ${relative(process.cwd(), new URL(url).pathname)}`
}

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  console.error('Usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const stackOf = (id: number): ProfileNode[] => {
  const stack: ProfileNode[] = []
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at) as ProfileNode)
  return stack
}
const ours = (n: ProfileNode) => n.callFrame.url.startsWith('file:') && !n.callFrame.url.includes('/node_modules/')
const harness = (n: ProfileNode) => ours(n) && n.callFrame.url.includes('/bench/')

// Each sample's time delta goes to the node on top of the stack (self time), and once to every
// distinct function of ours below it (inclusive time). The bench's own frames are left out.
const byName = new Map<string, number>()
const byArea = new Map<string, number>()
const inclusive = new Map<string, number>()
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us)
let idle = 0
let busy = 0
for (const [i, id] of profile.samples.entries()) {
  const us = profile.timeDeltas[i] ?? 0
  const node = byId.get(id) as ProfileNode
  if (node.callFrame.functionName === IDLE) { idle += us; continue }
  const stack = stackOf(id)
  if (stack.some(harness)) continue
  busy += us
  add(byName, where(node), us)
  add(byArea, area(node.callFrame.url), us)
  for (const name of new Set(stack.filter(ours).map(where))) add(inclusive, name, us)
}
const pct = (us: number, of: number) => `${(100 * us / of).toFixed(1).padStart(5)}%`
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
const count = Number(topArg ?? 30)

console.log(`profile: ${((busy + idle) / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy, ${pct(idle, busy + idle)} idle`)
console.log('\nself time by area (% of busy time):')
for (const [name, us] of top(byArea, 15)) console.log(`  ${pct(us, busy)}  ${name}`)
console.log('\ntop functions by self time (% of busy time):')
for (const [name, us] of top(byName, count)) console.log(`  ${pct(us, busy)}  ${name}`)
console.log('\nour functions by inclusive time (% of busy time, callees included):')
for (const [name, us] of top(inclusive, count)) console.log(`  ${pct(us, busy)}  ${name}`)
