import t from 'tap'
import { createHash } from 'node:crypto'
import { startGateway } from '../../test/helpers/gateway.ts'
import { gateway, limitedRoute, rateLimitHeaders, send, setup, type Setup } from '../../test/helpers/rate-limit.ts'

/** A gateway behind a trusted proxy (X-Forwarded-For names the client) with these `routes`. */
const behindProxy = (s: Setup, routes: string) => startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: true
upstreams:
  up: { targets: [ { url: "${s.upstream.url}" } ] }
routes:
${routes}`)

// Counters that must stay apart, through a real gateway: a value never takes over another's key.

t.test('a client without a consumer does not use up a limit by ip of the same name on another route', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('login', '/login', '{ limits: [ { name: default, requests: 3, window: 1h, by: [ ip ] } ] }')}${limitedRoute('api', '/api/*', '{ limits: [ { name: default, requests: 1000, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  for (let i = 0; i < 3; i++) t.equal((await send(`${gw.url}/api/x`)).status, 200)
  const login = await send(`${gw.url}/login`)
  t.equal(login.status, 200, '/login was never called')
  t.match(rateLimitHeaders(login).limit, [{ name: 'default', r: 2 }])
})

t.test('a short value starting with # cannot take over the counter of a long (hashed) one', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `plugins:
  test-auth: {}
routes:
${limitedRoute('c', '/c', '{ by: [ "claim:org" ], limits: [ { name: one, requests: 1, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  const victim = 'v'.repeat(100)
  // Keys hold a value over 64 characters as # and its SHA-256 (base64url): 44 characters.
  const poser = '#' + createHash('sha256').update(victim).digest('base64url')
  t.equal((await send(`${gw.url}/c`, { 'x-org': victim })).status, 200)
  t.equal((await send(`${gw.url}/c`, { 'x-org': poser })).status, 200, 'its own counter')
  t.equal((await send(`${gw.url}/c`, { 'x-org': victim })).status, 429, 'the long value\'s counter kept its count')
  t.equal((await send(`${gw.url}/c`, { 'x-org': poser })).status, 429)
})

t.test('ip: IPv6 clients counted by their /64 (ipv6Prefix), IPv4-mapped addresses as IPv4', async t => {
  const s = await setup(t)
  const route = (name: string, extra: string) => limitedRoute(name, `/${name}`, `{ by: [ ip ], ${extra}limits: [ { name: n, requests: 2, window: 1h } ] }`)
  const gw = await behindProxy(s, `${route('net', '')}${route('each', 'ipv6Prefix: 128, ')}${route('wide', 'ipv6Prefix: 48, ')}`)
  t.teardown(() => gw.close())
  const from = (path: string, ip: string) => send(`${gw.url}${path}`, { 'x-forwarded-for': ip }).then(a => a.status)
  t.same([await from('/net', '2001:db8:1:2::1'), await from('/net', '2001:db8:1:2::2'), await from('/net', '2001:db8:1:2:ffff::3')], [200, 200, 429], 'three addresses of one /64: one counter')
  t.equal(await from('/net', '2001:db8:1:3::1'), 200, 'another /64')
  t.same([await from('/each', '2001:db8:1:2::1'), await from('/each', '2001:db8:1:2::2'), await from('/each', '2001:db8:1:2::3')], [200, 200, 200], 'ipv6Prefix: 128, one counter per address')
  t.same([await from('/wide', '2001:db8:1:2::1'), await from('/wide', '2001:db8:1:ff::1'), await from('/wide', '2001:db8:1:4::1')], [200, 200, 429], 'ipv6Prefix: 48')
  t.same([await from('/net', '10.0.0.5'), await from('/net', '::ffff:10.0.0.5'), await from('/net', '10.0.0.5')], [200, 200, 429], 'an IPv4-mapped address is the IPv4 one')
})

t.test('ip: IPv4 clients behind NAT64 or SIIT are counted each by its IPv4 address, not all by the translator\'s /64', async t => {
  const s = await setup(t)
  const gw = await behindProxy(s, limitedRoute('login', '/login', '{ by: [ ip ], limits: [ { name: n, requests: 3, window: 1h } ] }'))
  t.teardown(() => gw.close())
  const from = (ip: string) => send(`${gw.url}/login`, { 'x-forwarded-for': ip }).then(a => a.status)
  const translated = ['64:ff9b::10.0.0.1', '64:ff9b::10.0.0.2', '64:ff9b::10.0.0.3', '64:ff9b::10.0.0.4', '::ffff:0:10.0.0.5']
  t.same(await Promise.all(translated.map(from)), [200, 200, 200, 200, 200], 'five clients, five counters')
  t.same([await from('64:ff9b::a00:1'), await from('10.0.0.1'), await from('::ffff:0:a00:1')], [200, 200, 429], 'one client, however its address reaches the gateway')
})

t.test('clients sending a header empty do not share one counter: each is counted by its address', async t => {
  const s = await setup(t)
  const gw = await behindProxy(s, limitedRoute('dev', '/dev', '{ by: [ "header:x-device" ], limits: [ { name: dev, requests: 1, window: 1h } ] }'))
  t.teardown(() => gw.close())
  const from = (ip: string, device: string) => send(`${gw.url}/dev`, { 'x-forwarded-for': ip, 'x-device': device }).then(a => a.status)
  t.same([await from('10.0.0.1', ''), await from('10.0.0.2', ''), await from('10.0.0.3', ' '), await from('10.0.0.4', ', ')], [200, 200, 200, 200], 'empty, spaces (trimmed to empty), an empty list')
  t.equal(await from('10.0.0.1', ''), 429, 'the first client\'s own counter')
})
