import { readFileSync, readdirSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import pino from 'pino'
import { parseConfig } from './src/config/load.ts'
import { ConfigError } from './src/config/config-error.ts'
import { Runtime } from './src/runtime/runtime.ts'
const log = pino({ level: 'silent' })
const ENV = { PARTNER_API_KEY: 'partner-key-0123456789', ALICE_KEY: 'alice-key-0123456789', BOB_KEY: 'bob-key-0123456789', JWT_SECRET: 's'.repeat(40) }
const docs = readdirSync('docs/plugins').filter(f => f.endsWith('.md')).flatMap(f => [...readFileSync(`docs/plugins/${f}`, 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map(m => ({ f, y: m[1] as string }))).filter(d => d.y.startsWith('server:') && !/type: redis|jwksUri|issuer|jwksFile|endpoint/.test(d.y))
console.log('bases', docs.length, docs.map(d => d.f).join(' '))
const VALUES: unknown[] = [null, 0, -1, 1.5, 1e12, '', 'x', '1s', '0s', [], [1], ['a'], [''], ['*'], {}, { a: 1 }, true, false, '*', '/*', ':id', 'GET', '0.0.0.0/0', 'a/*', '*/*', '/^x$/', 'HS256', ['HS256'], ['RS256'], 'memory', 'secret-of-at-least-32-characters-long!!']
let seed = Number(process.argv[2] ?? 1)
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
function paths (v: any, p: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(p)
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...p, i], out))
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k], [...p, k], out)
  return out
}
const found = new Map<string, string>()
let built = 0
for (let i = 0; i < Number(process.argv[3] ?? 500); i++) {
  const base = docs[Math.floor(rnd() * docs.length)]!
  const doc = parse(base.y)
  doc.server.listen = { host: '127.0.0.1', port: 0 }
  const all = paths(doc).filter(p => p.length > 2 && p.includes('plugins'))
  for (let m = 0; m < 1 + Math.floor(rnd() * 2); m++) {
    const p = all[Math.floor(rnd() * all.length)]
    if (!p) continue
    let parent: any = doc
    for (const k of p.slice(0, -1)) parent = parent?.[k]
    if (parent === null || typeof parent !== 'object') continue
    const last = p[p.length - 1]!
    if (rnd() < 0.2 && !Array.isArray(parent)) delete parent[last]
    else parent[last] = VALUES[Math.floor(rnd() * VALUES.length)]
  }
  const text = stringify(doc)
  try {
    const loaded = await parseConfig(text, 'fuzz.yaml', ENV)
    const rt = await Runtime.build(loaded, log)
    built++
    await rt.dispose()
  } catch (err) {
    if (err instanceof ConfigError) continue
    const e = (err as Error & { cause?: Error })
    const key = `${base.f}: ${e.message} CAUSE ${String(e.cause?.stack ?? '').split('\n').slice(0, 2).join(' | ')}`
    if (!found.has(key)) { found.set(key, text); console.log('ERR', key) }
  }
}
console.log('done built', built, 'distinct errors', found.size)
