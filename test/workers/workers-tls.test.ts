import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { liveCertificate, presented } from '../helpers/tls-gateway.ts'

t.test('workers: a renewed certificate file reaches every worker (the config text unchanged)', async t => {
  const { ca, dir, second, install } = liveCertificate(t)
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
  tls: { certificates: [ { cert: live.pem, key: live.key } ] }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`)
  const cli = spawnCli(['start', '-c', file])
  t.teardown(() => stopCli(cli))
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 90_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()}, stdout: ${JSON.stringify(cli.lines)})`)
  const gw = { url: String(primary.url) }
  t.match(gw.url, /^https:/)
  t.equal(await presented(gw, ca, 'api.example.com'), 'first')

  install(second)
  t.ok(await cli.waitForLine(l => l.msg === 'config reloaded' && l.trigger === 'certificate', 30_000), 'the primary reloads')
  // Each handshake is a new connection, which the cluster hands to either worker: twenty all see the new one.
  const seen: string[] = []
  for (let i = 0; i < 20; i++) seen.push(await presented(gw, ca, 'api.example.com'))
  t.same([...new Set(seen)], ['second'])
})
