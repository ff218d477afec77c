import t, { type Test } from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from '../helpers/cli.ts'
import { runCli } from '../helpers/run-cli.ts'
import { createTestCa } from '../helpers/certs.ts'
import { presented } from '../helpers/tls-gateway.ts'
import { gatewayYaml, namedUpstream, waitFor } from './helpers.ts'

// A directory the gateway may read files from but not list (0711, another owner): inotify refuses
// to watch it (EACCES), as it refuses any watch once the user's inotify watches run out (ENOSPC).
// The gateway then polls the files instead, with a warning; it once failed to start (a stack trace,
// exit 1), and a reload to certificates there answered 500 although the new config was serving.
// Root may watch anything: the CLI runs as nobody.
// Waits are at most: a start takes seconds, three times as long on a loaded machine; the poll comes every second.
const NOBODY = 65534
const skip = process.getuid?.() !== 0 && 'needs root to run the CLI as an unprivileged user'

/** A fresh directory that nobody may read files from; `listable` false: nor list (0711). */
function directory (t: Test, listable: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-unwatchable-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, listable ? 0o755 : 0o711)
  return dir
}

/** Writes `text` to `file`, readable by anyone. */
function publish (file: string, text: string | Buffer): void {
  writeFileSync(file, text)
  chmodSync(file, 0o644)
}

// The CLI, as nobody, cannot write the cache of compiled sources: this process and a CLI run as
// root fill it first.
t.before(async () => {
  if (skip !== false) return
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-warm-'))
  const file = join(dir, 'gw.yaml')
  writeFileSync(file, gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  - { name: a, match: { path: /a }, upstream: a }'))
  await runCli('validate', '-c', file)
  rmSync(dir, { recursive: true, force: true })
  await import('../../src/cli/commands/start.ts')
})

function startAsNobody (t: Test, file: string): CliProcess {
  const cli = spawnCli(['start', '-c', file], { HOME: '/tmp' }, { uid: NOBODY })
  t.teardown(() => stopCli(cli))
  return cli
}

t.test('a config file in a directory that cannot be watched: the gateway starts, warns, and sees changes by polling', { skip }, async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const file = join(directory(t, false), 'gw.yaml')
  publish(file, gatewayYaml({ u: [a.url] }, '  - { name: api, match: { path: /api }, upstream: u }'))
  const cli = startAsNobody(t, file)

  const listening = await cli.waitForLine(l => l.msg === 'gateway listening' || l.msg === undefined, 60_000)
  t.match(listening, { msg: 'gateway listening', watching: true }, `started (exit: ${await Promise.race([cli.exited, 'running'])}, stderr: ${cli.stderr()})`)
  t.match(cli.lines.find(l => l.level === 40), { file, msg: /cannot watch .* \(EACCES\).*polled every 1 s instead/ }, 'a warning says why, and what instead')

  publish(file, gatewayYaml({ u: [b.url] }, '  - { name: api, match: { path: /api }, upstream: u }'))
  t.match(await cli.waitForLine(l => l.msg === 'config reloaded', 30_000), { trigger: 'file' }, 'the change is seen')
  const res = await request(`${String(listening?.url)}/api`)
  t.equal(await res.body.text(), 'b')
  t.equal(await stopCli(cli), 0)
})

t.test('a reload to certificates in a directory that cannot be watched succeeds, and their renewal is seen by polling', { skip }, async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const certs = { a: ca.issue('a', 'DNS:api.example.com'), b: ca.issue('b', 'DNS:api.example.com'), c: ca.issue('c', 'DNS:api.example.com') }
  const up = await namedUpstream('up')
  t.teardown(() => up.close())
  const [open, closed] = [directory(t, true), directory(t, false)]
  const place = (dir: string, name: 'a' | 'b' | 'c') => {
    publish(join(dir, 'live.pem'), certs[name].cert)
    publish(join(dir, 'live.key'), certs[name].key)
  }
  const config = (dir: string) => gatewayYaml({ up: [up.url] }, '  - { name: all, match: { path: /* }, upstream: up }')
    .replace('port: 0 }\n', `port: 0 }\n  tls: { certificates: [ { cert: ${join(dir, 'live.pem')}, key: ${join(dir, 'live.key')} } ] }\n`)
  place(open, 'a')
  place(closed, 'b')
  const file = join(open, 'gw.yaml')
  publish(file, config(open))
  const cli = startAsNobody(t, file)
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening' || l.msg === undefined, 60_000)
  t.match(listening, { msg: 'gateway listening' }, `started (stderr: ${cli.stderr()})`)
  const gw = { url: String(listening?.url) }
  t.equal(await presented(gw, ca, 'api.example.com'), 'a')

  publish(file, config(closed))
  t.ok(await cli.waitForLine(l => l.msg === 'config reloaded' || (typeof l.msg === 'string' && l.msg.startsWith('config reload failed')), 30_000))
  const res = await request(`${String(listening?.admin)}/config/reload`, { method: 'POST' })
  const answer = await res.body.json() as { result: string, hash: string, error?: string }
  t.equal(res.statusCode, 200, `answered ${JSON.stringify(answer)}`)
  t.equal(answer.result, 'success')
  const active = await (await request(`${String(listening?.admin)}/config`)).body.json() as { hash: string, lastReload: { result: string } }
  t.same([active.hash, active.lastReload.result], [answer.hash, 'success'], 'what serves is what the answer says')
  t.equal(await presented(gw, ca, 'api.example.com'), 'b')
  t.ok(cli.lines.some(l => l.level === 40 && typeof l.msg === 'string' && /cannot watch .* \(EACCES\)/.test(l.msg)), 'warned')
  t.notOk(cli.lines.some(l => typeof l.msg === 'string' && l.msg.startsWith('config reload failed')), 'no reload failed')

  // A renewal in place, seen by the poll.
  place(closed, 'c')
  t.equal(await waitFor(async () => await presented(gw, ca, 'api.example.com') === 'c' ? 'c' : undefined, 30_000), 'c', 'the renewal is picked up')
})
