import t from 'tap'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { brotliDecompressSync } from 'node:zlib'
import { request } from 'undici'
import { TRY } from '../src/cli/commands/demo.ts'
import { startDemoUpstream } from '../src/demo/upstreams.ts'
import { startGateway } from './helpers/gateway.ts'

// What `npm run demo` prints, and the README shows, must be what the demo's gateway answers:
// config/demo.yaml as it is, its fixed ports swapped for free ones.
const KEY = 'demo-key-for-the-quick-start'

t.test('the README shows the requests the demo prints', async t => {
  t.ok(readFileSync(new URL('../README.md', import.meta.url), 'utf8').includes(TRY))
})

t.test('config/demo.yaml answers each request the demo suggests as its comment says', async t => {
  const users = await startDemoUpstream('users', 0)
  const orders = await startDemoUpstream('orders', 0)
  t.teardown(() => { users.close(); orders.close() })
  const portOf = (s: typeof users): number => (s.address() as AddressInfo).port
  const yaml = readFileSync(new URL('../config/demo.yaml', import.meta.url), 'utf8')
    .replace('port: 8080', 'port: 0').replace('port: 9901', 'port: 0')
    .replace('127.0.0.1:3001', `127.0.0.1:${portOf(users)}`).replace('127.0.0.1:3002', `127.0.0.1:${portOf(orders)}`)
  const gw = await startGateway(yaml, { file: 'config/demo.yaml' })
  t.teardown(() => gw.close())
  const get = async (path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) => {
    const res = await request(`${gw.url}${path}`, { method, headers, body })
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
  }

  const user = await get('/users/7')
  t.equal(user.status, 200)
  t.match(JSON.parse(user.body.toString()), { service: 'users', url: '/users/7', headers: { 'x-gateway': 'portcullis' } })

  t.equal((await get('/orders')).status, 401, 'no key')
  const order = { 'x-api-key': KEY, 'content-type': 'application/json' }
  for (let i = 1; i <= 5; i++) {
    const r = await get('/orders', order, 'POST', '{"item":"book"}')
    t.equal(r.status, 200, `order ${i}`)
    if (i === 1) {
      t.match(JSON.parse(r.body.toString()), { service: 'orders', method: 'POST', body: '{"item":"book"}' })
      t.match(r.headers, { 'ratelimit-policy': '"per-client";q=5;w=60', ratelimit: /^"per-client";r=4;t=\d+$/ })
    }
  }
  t.equal((await get('/orders', order, 'POST', '{"item":"book"}')).status, 429, 'the 6th in a minute')

  const br = { 'accept-encoding': 'br, gzip' }
  const miss = await get('/catalog/books', br)
  t.match(miss.headers, { 'cache-status': 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=30', 'content-encoding': 'br' })
  const hit = await get('/catalog/books', br)
  t.match(hit.headers, { 'cache-status': /^Portcullis; hit; ttl=\d+$/, age: /^\d+$/, 'content-encoding': 'br' })
  t.match(JSON.parse(brotliDecompressSync(hit.body).toString()), { service: 'users', url: '/catalog/books' })

  const none = await get('/nothing-here')
  t.equal(none.status, 404)
  t.match(JSON.parse(none.body.toString()), { error: 'no_route' })
  t.match(JSON.parse((await get('/orders/../users/7')).body.toString()), { service: 'users', url: '/users/7' }, 'normalized: the users route')
  t.equal((await request(`${gw.adminUrl as string}/readyz`)).statusCode, 200)
})
