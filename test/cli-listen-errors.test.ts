import t from 'tap'
import { createServer, type Server } from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, runCliHere, runNode, type Run } from './helpers/run-cli.ts'
import { listenAdvice } from '../src/cli/commands/start.ts'
import { ListenError } from '../src/server/listen-error.ts'

// A port in use (a second `portcullis start`) or a privileged port: one line naming the address
// and the key to change, exit 1, no stack trace. In this process where no process of its own is
// needed; worker mode (a cluster) and another user are real processes, which also show the stderr
// a user sees (no stack trace).
async function occupy (port = 0): Promise<{ server: Server, port: number }> {
  const server = createServer()
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

/** `portcullis start -c file` in this process, with PORT set (the file's ${PORT:-0}). */
async function startHere (file: string, port: number): Promise<Run> {
  const saved = process.env.PORT
  process.env.PORT = String(port)
  try {
    return await runCliHere('start', '-c', file)
  } finally {
    if (saved === undefined) delete process.env.PORT
    else process.env.PORT = saved
  }
}

function configFile (adminPort?: number, workers = 1): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-listen-'))
  chmodSync(dir, 0o755)
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: "\${PORT:-0}" }
  workers: ${workers}
${adminPort === undefined ? '' : `admin:\n  listen: { port: ${adminPort} }\n`}upstreams:
  app: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
  return file
}

t.test('the gateway port in use: one line with the address, the key at file:line:col and the variable that sets it', async t => {
  const busy = await occupy()
  t.teardown(() => busy.server.close())
  const file = configFile()
  const run = await startHere(file, busy.port)
  t.equal(run.code, 1)
  t.equal(run.stderr, `portcullis: cannot listen on 127.0.0.1:${busy.port} (server.listen): the address is already in use ` +
    `(another gateway, or another program, listens there). Change server.listen.port in ${file}:2:36 (or set PORT).\n`)
})

t.test('worker mode: the same one line from the primary, no stack trace and no worker error lines', async t => {
  const busy = await occupy()
  t.teardown(() => busy.server.close())
  const file = configFile(undefined, 2)
  const run = await runNode([...CLI_FROM_SOURCES, 'start', '-c', file], { env: { PORT: String(busy.port) } })
  t.equal(run.code, 1)
  t.equal(run.stderr, `portcullis: cannot listen on 127.0.0.1:${busy.port} (server.listen): the address is already in use ` +
    `(another gateway, or another program, listens there). Change server.listen.port in ${file}:2:36 (or set PORT).\n`)
  t.notMatch(run.stdout, /"level":50/, 'no error log line from the workers')
})

t.test('the admin port in use: the admin key is named', async t => {
  const busy = await occupy()
  t.teardown(() => busy.server.close())
  const file = configFile(busy.port)
  const run = await runCliHere('start', '-c', file)
  t.equal(run.code, 1)
  t.equal(run.stderr, `portcullis: cannot listen on 127.0.0.1:${busy.port} (admin.listen): the address is already in use ` +
    `(another gateway, or another program, listens there). Change admin.listen.port in ${file}:5:19.\n`)
})

t.test('the h2c port in use: its own key at file:line:col and its own variable (it named PORT, server.listen\'s)', async t => {
  const busy = await occupy()
  t.teardown(() => busy.server.close())
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-listen-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: "\${PORT:-0}" }
  http2:
    h2c:
      listen:
        host: 127.0.0.1
        port: "\${H2C_PORT:-0}"
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
  process.env.H2C_PORT = String(busy.port)
  t.teardown(() => { delete process.env.H2C_PORT })
  const run = await runCliHere('start', '-c', file)
  t.equal(run.code, 1)
  t.equal(run.stderr, `portcullis: cannot listen on 127.0.0.1:${busy.port} (server.http2.h2c.listen): the address is already in use ` +
    `(another gateway, or another program, listens there). Change server.http2.h2c.listen.port in ${file}:7:15 (or set H2C_PORT).\n`)
})

t.test('a key the file leaves to its default: the file alone, no line:col', async t => {
  const err = new ListenError('admin.listen', '127.0.0.1', 9901, 'EADDRINUSE', { cause: undefined })
  t.equal(listenAdvice(err, { file: 'gw.yaml', text: 'admin:\n  token: x\n' }), `${err.message}. Change admin.listen.port in gw.yaml.`)
  t.equal(listenAdvice(err, { file: 'gw.yaml', text: 'admin:\n  listen:\n    port: 9901\n' }), `${err.message}. Change admin.listen.port in gw.yaml:3:11.`)
})

t.test('a listen host that does not resolve: one line naming the host key, no stack trace (a DNS error once crashed start)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-listen-'))
  const unresolved = /: (no such host name \(it does not resolve to an address\)|the host name could not be resolved now \(DNS did not answer\))\./
  for (const [section, listen] of [['server', 'host: nonexistent.invalid, port: 0'], ['admin', 'host: nonexistent.invalid, port: 0']] as const) {
    const file = join(dir, `${section}.yaml`)
    writeFileSync(file, `server:
  listen: { ${section === 'server' ? listen : 'host: 127.0.0.1, port: 0'} }
admin:
  listen: { ${section === 'admin' ? listen : 'host: 127.0.0.1, port: 0'} }
  token: "0123456789abcdef0123456789abcdef"
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
    const run = await runCliHere('start', '-c', file)
    t.equal(run.code, 1, section)
    t.match(run.stderr, new RegExp(`^portcullis: cannot listen on nonexistent\\.invalid:0 \\(${section}\\.listen\\)`), section)
    t.match(run.stderr, unresolved)
    t.match(run.stderr, `Change ${section}.listen.host in ${file}:${section === 'server' ? 2 : 4}:19.\n`)
    t.equal(run.stderr.split('\n').length, 2, 'one line')
  }
})

t.test('a privileged port without the right to bind it: permission denied, with what to do', { skip: process.getuid?.() !== 0 && 'needs root to run the CLI as an unprivileged user' }, async t => {
  const file = configFile()
  const run = await runNode([...CLI_FROM_SOURCES, 'start', '-c', file], { env: { PORT: '81', HOME: '/tmp' }, uid: 65534 })
  t.equal(run.code, 1)
  t.equal(run.stderr, 'portcullis: cannot listen on 127.0.0.1:81 (server.listen): permission denied ' +
    `(ports below 1024 need root or CAP_NET_BIND_SERVICE). Change server.listen.port in ${file}:2:36 (or set PORT).\n`)
})

t.test('demo with port 3001 taken: one line, exit 1', async t => {
  // Held by this test, or already by someone else: taken either way.
  const busy = await occupy(3001).catch(() => undefined)
  t.teardown(() => busy?.server.close())
  const run = await runCliHere('demo')
  t.equal(run.code, 1)
  t.equal(run.stderr, 'portcullis demo: cannot start a demo service on 127.0.0.1:3001: the address is already in use. ' +
    'The demo needs 127.0.0.1:3001 and 127.0.0.1:3002 free (is a demo already running?).\n')
})
