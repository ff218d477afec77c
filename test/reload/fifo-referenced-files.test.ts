import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { appendFileSync, copyFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { createTestCa } from '../helpers/certs.ts'
import { spawnCli, stopCli, type CliProcess } from '../helpers/cli.ts'

// Every gateway here runs in a process of its own: without the fix, the read of a named pipe holds
// its main thread for ever, which only a SIGKILL (stopCli's, after its grace) ends.

const JWKS = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'ec-1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] })
const NOT_REGULAR = 'it is a named pipe (FIFO), not a regular file'

/** Replaces `file` with a named pipe no one writes to. */
const fifoAt = (file: string) => { rmSync(file, { force: true }); execFileSync('mkfifo', [file]) }

/** A test CA's directory (its certificate ca.pem), with a certificate live.pem and key live.key, jwks.json, and gw.yaml naming them all. */
function setup (t: Test): { dir: string, config: string } {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const dir = join(ca.certFile, '..')
  const leaf = ca.issue('leaf', 'DNS:localhost')
  copyFileSync(leaf.certFile, join(dir, 'live.pem'))
  copyFileSync(leaf.keyFile, join(dir, 'live.key'))
  writeFileSync(join(dir, 'jwks.json'), JWKS)
  const config = join(dir, 'gw.yaml')
  writeFileSync(config, `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls:
    certificates: [ { cert: live.pem, key: live.key } ]
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "https://127.0.0.1:1" } ], tls: { ca: ca.pem } }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { jwt-auth: { jwksFile: jwks.json } } }
`)
  return { dir, config }
}

/** Waits for `cli` to exit, for 30 s at most. */
const exited = (cli: CliProcess) => Promise.race([cli.exited, new Promise(resolve => setTimeout(resolve, 30_000, 'still running').unref())])

t.test('validate refuses named pipes as jwksFile, server.tls and upstream tls files and loadPlugins, each at its key, without waiting for a writer', async t => {
  const { dir, config } = setup(t)
  appendFileSync(config, 'loadPlugins: [ ./plugin.ts ]\n')
  for (const f of ['jwks.json', 'live.pem', 'ca.pem', 'plugin.ts']) fifoAt(join(dir, f))
  const cli = spawnCli(['validate', '-c', config])
  t.teardown(() => stopCli(cli, 1_000))
  t.equal(await exited(cli), 1)
  const out = cli.stderr()
  t.match(out, `gw.yaml:4:29 server.tls.certificates[0].cert: cannot read "live.pem": ${NOT_REGULAR}`)
  t.match(out, `gw.yaml:8:65 upstreams.up.tls.ca: cannot read "ca.pem": ${NOT_REGULAR}`)
  t.match(out, `gw.yaml:11:16 loadPlugins[0]: cannot load plugin "./plugin.ts": ${NOT_REGULAR}`)
  t.match(out, `gw.yaml:10:84 routes[0].plugins.jwt-auth.jwksFile: ${join(dir, 'jwks.json')}: ${NOT_REGULAR}`)
})

t.test('a running gateway rejects reloads that meet a named pipe, answers /readyz meanwhile and stops on SIGTERM', async t => {
  const { dir, config } = setup(t)
  const cli = spawnCli(['start', '-c', config])
  t.teardown(() => stopCli(cli, 5_000))
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)
  const readyz = async () => {
    try {
      return (await request(`${String(ready?.admin)}/readyz`, { signal: AbortSignal.timeout(10_000) })).statusCode
    } catch (err) {
      return (err as Error).name
    }
  }
  const rejected = (issue: string) => cli.waitForLine(l => typeof l.msg === 'string' && l.msg.startsWith('config reload rejected') &&
    Array.isArray(l.issues) && l.issues.some(i => String(i).includes(issue)), 30_000)

  // The certificate watcher compares the files' content, then reloads.
  fifoAt(join(dir, 'live.pem'))
  t.ok(await rejected(`server.tls.certificates[0].cert: cannot read "live.pem": ${NOT_REGULAR}`), 'a certificate replaced by a pipe: reload rejected')
  t.equal(await readyz(), 200)

  fifoAt(join(dir, 'jwks.json'))
  cli.child.kill('SIGHUP')
  t.ok(await rejected(`jwt-auth.jwksFile: ${join(dir, 'jwks.json')}: ${NOT_REGULAR}`), 'a JWKS file replaced by a pipe: reload rejected')
  t.equal(await readyz(), 200)

  t.equal(await stopCli(cli, 15_000), 0, 'SIGTERM stops it')
})
