import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, waitFor } from '../reload/helpers.ts'

t.test('a second SIGTERM ends a draining gateway at once, its buffered log lines written; `shutting down` counts the requests of a replaced config', async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  let heldReached = false
  const up = await startUpstream((req, res) => {
    req.resume()
    // A download that never ends: it holds the drain until the deadline (60 s).
    if (req.url === '/download') res.writeHead(200).write('x'.repeat(1024))
    else { heldReached = true; void held.then(() => res.end('done')) }
  })
  const yaml = (routes: string) => gatewayYaml({ u: [up.url] }, routes).replace('server:\n', 'server:\n  shutdownTimeout: 60s\n')
  const cf = await configFile(yaml('  - { name: r, match: { path: /* }, upstream: u }'))
  t.teardown(async () => { release(); await up.close(); await cf.remove() })
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  // Its output read to the end: lines written on exit may come after 'exit'.
  const closed = once(cli.child, 'close')
  t.teardown(() => stopCli(cli, 1_000))
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(listening, `started (stderr: ${cli.stderr()})`)
  const url = String(listening?.url)

  // The download starts on the first config, which a reload then replaces.
  const download = await request(`${url}/download`)
  t.equal(download.statusCode, 200, 'a download in flight')
  const cut = download.body.text().catch((err: Error) => err)
  await cf.write(yaml('  - { name: r2, match: { path: /* }, upstream: u }'))
  cli.child.kill('SIGHUP')
  t.ok(await cli.waitForLine(l => l.msg === 'config reloaded', 20_000), 'reloaded')
  const answer = request(`${url}/held`).then(async res => ({ status: res.statusCode, body: await res.body.text() }))
  t.ok(await until(() => heldReached, 10_000), 'a request in flight on the new config')

  cli.child.kill('SIGTERM')
  // Seen from outside, not in the log, whose lines may still be buffered.
  const readyz = `${String(listening?.admin)}/readyz`
  t.ok(await waitFor(async () => (await request(readyz)).statusCode === 503 || undefined, 20_000), 'the drain began')
  release()
  t.same(await answer, { status: 200, body: 'done' }, 'the held request finished during the drain')
  // Right after its access-log line was buffered.
  const sent = performance.now()
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 'SIGTERM', 'the second ends it: killed by SIGTERM, as systemd expects of a clean stop')
  t.equal(cli.child.exitCode, null, 'not exit 143')
  const tookMs = Math.round(performance.now() - sent)
  t.ok(tookMs < 20_000, `at once, not at the 60 s deadline (took ${tookMs} ms)`)
  t.type(await cut, Error, 'the download was cut')
  await closed

  const msgs = cli.lines.map(l => l.msg)
  t.ok(msgs.includes('signal received'), 'the first signal was logged')
  t.match(cli.lines.find(l => l.msg === 'shutting down'), { inFlight: 2 }, 'shutting down counted the download on the replaced config too')
  t.match(cli.lines.find(l => l.msg === 'request' && l.path === '/held'), { status: 200, route: 'r2' }, 'the access-log line of the request that finished')
  t.match(cli.lines.find(l => l.msg === 'second signal: ending now'), { level: 40, signal: 'SIGTERM', inFlight: 1 }, 'the second signal was logged, with the download still in flight')
})
