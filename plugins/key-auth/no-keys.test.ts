import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { runCliHere } from '../../test/helpers/run-cli.ts'

// A key-auth no consumer holds a key for (nor a store) and that admits no request without one
// answers every request 401: valid, so it loaded without a word. Now a warning at its key.
const KEY = 'a-key-of-at-least-16-chars'
const config = (consumers: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - id: guest
${consumers}plugins:
  key-auth: {}
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: inherits
    match: { path: /a/* }
    upstream: app
  - name: own
    match: { path: /b/* }
    upstream: app
    plugins:
      key-auth: { header: x-key }
  - name: with-basic
    match: { path: /c/* }
    upstream: app
    plugins:
      basic-auth: {}
  - name: guests
    match: { path: /d/* }
    upstream: app
    plugins:
      key-auth: { anonymous: guest }
  - name: stored
    match: { path: /e/* }
    upstream: app
    plugins:
      key-auth: { store: memory }
  - name: open
    match: { path: /f/* }
    upstream: app
    plugins:
      key-auth: false
`
const NO_KEY = 'no consumer has a key-auth key (consumers[].credentials.key-auth.keys) and key-auth has no store, so it accepts no key'
const WITH_KEY = `  - id: client
    credentials:
      key-auth: { keys: [ "sha256:${createHash('sha256').update(KEY).digest('hex')}" ] }
`

t.test('a key-auth that accepts no key, on a route that admits no request without one, is warned of at its key', async t => {
  const loaded = await parseConfig(config(''), 'gateway.yaml', {})
  t.same(loaded.warnings?.map(w => [w.line, w.col, w.path, w.message]), [
    [6, 3, 'plugins.key-auth', `route "inherits": ${NO_KEY}, and it admits no request without one (no anonymous): every request is answered 401`],
    [17, 7, 'routes[1].plugins.key-auth', `route "own": ${NO_KEY}, and it admits no request without one (no anonymous): every request is answered 401`],
    [6, 3, 'plugins.key-auth', `route "with-basic": ${NO_KEY}: only basic-auth credentials admit a request`]
  ], 'none where anonymous requests are admitted, a store may hold keys, or key-auth is off')
})

t.test('one warning at the top-level key for the many routes that use it', async t => {
  const routes = Array.from({ length: 200 }, (_, i) => `  - name: r${i}\n    match: { path: /r${i}/* }\n    upstream: app\n`).join('')
  const loaded = await parseConfig(config('').replace(/^routes:\n[^]*/m, `routes:\n${routes}`), 'gateway.yaml', {})
  t.same(loaded.warnings?.map(w => [w.path, w.message]), [
    ['plugins.key-auth', `routes "r0", "r1", "r2" and 197 more: ${NO_KEY}, and it admits no request without one (no anonymous): every request is answered 401`]
  ], 'not one for each route')
})

t.test('none once a consumer holds a key-auth key', async t => {
  const loaded = await parseConfig(config(WITH_KEY), 'gateway.yaml', {})
  t.same(loaded.warnings, [])
})

t.test('validate prints it at file:line:column; what it warns of', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'portcullis-key-auth-')), 'gateway.yaml')
  writeFileSync(file, config(''))
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0, 'valid, with warnings')
  t.match(run.stderr, `${file}:17:7 warning: routes[1].plugins.key-auth: route "own": ${NO_KEY}, and it admits no request without one (no anonymous): every request is answered 401\n`)
  const gw = await startGateway(config(''))
  t.teardown(() => gw.close())
  for (const headers of [{}, { 'x-key': KEY }]) {
    const res = await request(`${gw.url}/b/x`, { headers })
    await res.body.dump()
    t.equal(res.statusCode, 401, JSON.stringify(headers))
  }
})
