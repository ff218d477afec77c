import t from 'tap'
import { request } from 'undici'
import { frozenCopy } from '../src/config/frozen-copy.ts'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'

// Consumers' metadata is free-form: YAML tags make bytes (!!binary), sets, maps and dates of it,
// which freezing through structuredClone could not take (`Cannot freeze array buffer views with
// elements`: start, reload and validate crashed). And 10,000 consumers cloned so took 0.3-0.5 s.

t.test('a copy with everything frozen: plain data, tagged values, shared parts', async t => {
  const shared = { n: 1 }
  const original = { a: [1, { b: 2 }], bytes: new Uint8Array([1, 2]), set: new Set([{ s: 1 }]), map: new Map([['k', { m: 1 }]]), at: new Date(0), x: shared, y: shared }
  Object.defineProperty(original, '__proto__', { value: { p: 1 }, enumerable: true })
  const copy = frozenCopy(original)
  t.not(copy, original)
  t.ok(Object.isFrozen(copy) && Object.isFrozen(copy.a) && Object.isFrozen(copy.a[1]), 'objects and arrays frozen')
  t.same(copy.bytes, new Uint8Array([1, 2]))
  t.not(copy.bytes, original.bytes, 'bytes copied (a view cannot be frozen)')
  t.ok(Object.isFrozen([...copy.set][0]) && Object.isFrozen(copy.map.get('k')), 'what a set or a map holds is frozen')
  t.equal(copy.at.getTime(), 0)
  t.equal(copy.x, copy.y, 'shared parts stay shared')
  t.equal(Object.getPrototypeOf(copy), Object.prototype, 'a __proto__ key is data, not the prototype')
  t.same(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { p: 1 })
  t.same(original.a, [1, { b: 2 }], 'the original is left as it was')
  t.notOk(Object.isFrozen(original))
})

t.test('a consumer with !!binary metadata: the gateway starts and authenticates', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - id: alice
    metadata: { blob: !!binary aGVsbG8=, tags: !!set { a, b } }
    credentials: { key-auth: { keys: [alice-key-0123456789abcdef] } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { key-auth: {} } }
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/x`, { headers: { 'x-api-key': 'alice-key-0123456789abcdef' } })
  await res.body.dump()
  t.equal(res.statusCode, 200)
})
