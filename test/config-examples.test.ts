import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { loadConfig } from '../src/config/load.ts'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'

// config/examples/*.yaml are meant to be copied as they are: each must load with no variable set.
const dir = new URL('../config/examples/', import.meta.url)
const examples = readdirSync(dir).filter(f => f.endsWith('.yaml')).sort()

t.test('the examples are all there', async t => {
  t.same(examples, ['canary.yaml', 'hosts.yaml', 'one-service.yaml', 'reference.yaml', 'websockets.yaml'])
})

for (const name of examples) {
  t.test(`config/examples/${name} is valid as it is`, async t => {
    const loaded = await loadConfig(fileURLToPath(new URL(name, dir)), {})
    t.ok(loaded.config.routes.length > 0)
  })
}

t.test('canary.yaml sends about one request in ten to the canary, and x-canary: always to it only', async t => {
  const stable = await startUpstream((_req, res) => res.end('stable'))
  const canary = await startUpstream((_req, res) => res.end('canary'))
  t.teardown(async () => { await stable.close(); await canary.close() })
  const text = readFileSync(new URL('canary.yaml', dir), 'utf8')
    .replace('port: 8080', 'host: 127.0.0.1, port: 0')
    .replaceAll('http://10.0.0.5:3000', stable.url).replaceAll('http://10.0.0.6:3000', canary.url)
  const gw = await startGateway(text)
  t.teardown(() => gw.close())
  const seen: Record<string, number> = { stable: 0, canary: 0 }
  for (let i = 0; i < 20; i++) {
    const res = await request(`${gw.url}/cart`)
    seen[await res.body.text()]! += 1
  }
  t.same(seen, { stable: 18, canary: 2 }, 'smooth weighted round-robin: 9 to 1')
  const forced = await request(`${gw.url}/cart`, { headers: { 'x-canary': 'always' } })
  t.equal(await forced.body.text(), 'canary')
})
