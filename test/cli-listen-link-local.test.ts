import t from 'tap'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCliHere } from './helpers/run-cli.ts'

/** The error code binding `host` gives here (undefined: it binds). */
async function bindError (host: string): Promise<string | undefined> {
  const server = createServer().listen(0, host)
  try {
    await once(server, 'listening')
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  } finally {
    server.close()
  }
}

// A link-local IPv6 address without its interface (fe80::1, not fe80::1%eth0) cannot be bound
// (EINVAL): start printed a stack trace.
const code = await bindError('fe80::1')
t.test('a link-local address without its interface: one line naming the host key, no stack trace', { skip: code !== 'EINVAL' && `binding fe80::1 gives ${code ?? 'no error'} here, not EINVAL` }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-listen-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: "fe80::1", port: 0 }
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
  const run = await runCliHere('start', '-c', file)
  t.equal(run.code, 1)
  t.equal(run.stderr, 'portcullis: cannot listen on [fe80::1]:0 (server.listen): the address cannot be bound here (a link-local IPv6 address ' +
    `such as fe80::1 needs its interface: fe80::1%eth0). Change server.listen.host in ${file}:2:19.\n`)
})
