import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { configFile, gatewayYaml } from '../reload/helpers.ts'
import { until } from '../helpers/wait.ts'

// `unshare` runs node as PID 1 of a namespace of its own, as a container without an init does (as root, and where allowed).
const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0
t.test('as PID 1 (a container without an init), a second SIGTERM still ends the gateway at once', { skip: canUnshare ? false : 'no PID namespace can be made here' }, async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  let reached = false
  const up = await startUpstream((req, res) => { reached = true; req.resume(); void held.then(() => res.end('late')) })
  const cf = await configFile(gatewayYaml({ u: [up.url] }, '  - { name: r, match: { path: /* }, upstream: u }').replace('server:\n', 'server:\n  shutdownTimeout: 60s\n'))
  t.teardown(async () => { release(); await up.close(); await cf.remove() })
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], {}, { wrapper: ['unshare', '--pid', '--fork', '--mount-proc'] })
  t.teardown(() => stopCli(cli, 1_000))
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening', 60_000)
  t.ok(listening, `started (stderr: ${cli.stderr()})`)
  // The gateway is unshare's child: PID 1 inside, signalled from outside as a container runtime does.
  const pid = Number(readFileSync(`/proc/${cli.child.pid as number}/task/${cli.child.pid as number}/children`, 'utf8').trim())
  t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'PID 1 in its namespace')
  const answer = request(`${String(listening?.url)}/held`).catch((err: Error) => err)
  t.ok(await until(() => reached), 'a request in flight')
  process.kill(pid, 'SIGTERM')
  t.ok(await cli.waitForLine(l => l.msg === 'signal received', 10_000), 'the first one starts the drain (60 s)')
  const sent = performance.now()
  process.kill(pid, 'SIGTERM')
  t.equal(await cli.exited, 143, 'the second ends it, exit 128 + 15 (a PID 1 ignores the signal itself)')
  t.ok(performance.now() - sent < 10_000, 'at once, not at the drain\'s end')
  t.type(await answer, Error, 'the held request was cut')
})
