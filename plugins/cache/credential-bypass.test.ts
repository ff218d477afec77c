import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { waitForLog } from '../../test/helpers/logs.ts'
import { runCliHere } from '../../test/helpers/run-cli.ts'
import { startFromFile } from '../../test/reload/helpers.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// A cache behind key-auth once bypassed every request (each has credentials) and said so only in
// Cache-Status: a newcomer's defaultTtl never stored anything. Now the gateway warns at load, as
// validate and explain do; not where the cache can serve some requests.
const KEY = 'a-key-of-at-least-16-chars'
const config = (upstream: string): string => `
consumers:
  - id: client
    credentials:
      key-auth: { keys: [ "sha256:${createHash('sha256').update(KEY).digest('hex')}" ] }
  - id: guest
upstreams:
  app: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: keyed
    match: { path: /keyed/* }
    upstream: app
    plugins:
      key-auth: {}
      rate-limit: { limits: [ { name: per-client, requests: 100, window: 1m } ] }
      cache: { defaultTtl: 30s }
  - name: authorized
    match: { path: /authorized/* }
    upstream: app
    plugins:
      key-auth: {}
      cache: { cacheAuthorized: true }
  - name: guests
    match: { path: /guests/* }
    upstream: app
    plugins:
      key-auth: { anonymous: guest }
      cache: { defaultTtl: 30s }
  - name: open
    match: { path: /open/* }
    upstream: app
    plugins:
      cache: { defaultTtl: 30s }
`
const WARNING = /^route "keyed": the cache is bypassed for requests with credentials, and key-auth admits no other, so nothing is stored: set cacheAuthorized: true, and have the upstream send public or s-maxage/

const bypassLogs = (logs: ReadonlyArray<Record<string, unknown>>) => logs.filter(l => typeof l.msg === 'string' && l.msg.includes('bypassed for requests with credentials'))

t.test('the gateway warns at load of a cache its route\'s auth lets no request past without credentials', async t => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cache-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${config(upstream.url)}`)
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  // A load warning (the cache's warnings hook), at the route's cache key; its setup no longer logs it too.
  const warning = await waitForLog(gw.logs, { level: 40, path: 'routes[0].plugins.cache' })
  t.match(warning, { file, line: 18, col: 7 })
  t.match(warning?.msg, WARNING)
  t.same(bypassLogs(gw.logs).map(l => l.path), ['routes[0].plugins.cache'],
    'once; none for a route with cacheAuthorized, one admitting anonymous requests, or one without auth')
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  t.equal(bypassLogs(gw.logs).length, 2, 'logged again, once, by a reload')
  // What it warns of.
  const res = await request(`${gw.url}/keyed/x`, { headers: { 'x-api-key': KEY } })
  await res.body.dump()
  t.equal(res.headers['cache-status'], 'Portcullis; fwd=bypass; detail=credentials')
})

t.test('validate warns of it at the route\'s cache key, and explain notes it on the route', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'portcullis-cache-')), 'gateway.yaml')
  writeFileSync(file, `server:\n  listen: { port: 8080 }\n${config('http://127.0.0.1:3001')}`)
  const validated = await runCliHere('validate', '-c', file)
  t.equal(validated.code, 0, validated.stderr)
  t.equal(validated.stderr.split('\n').filter(l => l !== '').length, 1, 'one warning')
  t.match(validated.stderr, new RegExp(`^${file}:18:7 warning: routes\\[0\\]\\.plugins\\.cache: ${WARNING.source.slice(1)}`))
  const keyed = await runCliHere('explain', '-c', file, 'GET', '/keyed/x')
  // Under its route's line: not named again.
  t.match(keyed.stdout, /^ {2}note {13}the cache is bypassed for requests with credentials, and key-auth admits no other, so nothing is stored: /m)
  for (const path of ['/authorized/x', '/guests/x', '/open/x']) t.notMatch((await runCliHere('explain', '-c', file, 'GET', path)).stdout, /note/, path)
})
