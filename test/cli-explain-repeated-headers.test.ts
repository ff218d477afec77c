import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCliHere } from './helpers/run-cli.ts'

// explain took the last of repeated -H fields, where the gateway gets them as Node joins them
// (`1, 1`): it showed the guarded route for a request the gateway sends down the public one.
t.test('explain routes repeated header fields as Node hands them to the gateway', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-explain-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: admin, match: { path: /hd/*, headers: { x-admin: "1" } }, upstream: app, plugins: { request-termination: { status: 403 } } }
  - { name: v2, match: { path: /v/*, headers: { x-version: "2" } }, upstream: app }
  - { name: public, match: { path: /* }, upstream: app }
`)
  const route = async (...args: string[]) => (await runCliHere('explain', '-c', file, ...args)).stdout.match(/route +(\S+)/)?.[1]
  t.equal(await route('GET', '/hd/x', '-H', 'x-admin: 1'), 'admin', 'one field: the protected route')
  t.equal(await route('GET', '/hd/x', '-H', 'x-admin: 1', '-H', 'x-admin: 1'), 'public', 'two: "1, 1", as the gateway sees it')
  t.equal(await route('GET', '/v/x', '-H', 'x-version: 1', '-H', 'x-version: 2'), 'public', '"1, 2" is not "2"')
  t.equal(await route('GET', '/hd/x', '-H', 'host: a.example', '-H', 'x-admin: 1'), 'admin', 'single-valued fields as Node keeps them')
})
