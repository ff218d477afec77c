import t from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { spawnNode, stopCli } from '../helpers/cli.ts'
import { CLI_FROM_SOURCES } from '../helpers/run-cli.ts'
import { configFile, waitFor } from '../reload/helpers.ts'
import { fresh } from './helpers.ts'

const DNS_IMPORT = fileURLToPath(new URL('./dns-import.mjs', import.meta.url))

/** A server on `host`:`port` answering `body`, and its health check 200 (503 when `sick`). */
async function server (host: string, port: number, body: string, sick = false): Promise<Server> {
  const s = createServer((req, res) => {
    req.resume()
    if (req.url === '/health') res.writeHead(sick ? 503 : 200).end()
    else res.writeHead(200).end(body)
  })
  s.listen(port, host)
  await once(s, 'listening')
  return s
}

t.test('workers: the workers take the addresses the primary\'s DNS discovery found (and checks), not their own', async t => {
  // One port on three loopback addresses: the name's addresses differ only by address.
  const good = await server('127.0.0.1', 0, 'good')
  const port = (good.address() as { port: number }).port
  const sick = await server('127.0.0.2', port, 'sick', true)
  const later = await server('127.0.0.3', port, 'later')
  t.teardown(() => { for (const s of [good, sick, later]) s.close() })

  // A worker's lookup answers an address the primary's does not: one found before the primary's.
  const answers = join(t.testdir({}), 'answers.json')
  const answer = (primary: string[], worker: string[]) => writeFileSync(answers, JSON.stringify({ primary, worker }))
  answer(['127.0.0.1'], ['127.0.0.1', '127.0.0.2'])
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  pool:
    targets: [ { url: "http://svc.test:${port}", resolve: dns, dnsInterval: 1s } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }
routes:
  - { name: api, match: { path: /api }, upstream: pool }
`)
  const cli = spawnNode(['--import', DNS_IMPORT, ...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'],
    { PORTCULLIS_TEST_DNS_NAME: 'svc.test', PORTCULLIS_TEST_DNS_FILE: answers })
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (listening === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const url = `${String(listening.url)}/api`

  t.same(new Set(await fresh(url, 12)), new Set(['200 good']), 'no worker sends to the address only it found (never checked)')

  // The primary finds another address: the workers send to it too, soon after.
  answer(['127.0.0.1', '127.0.0.3'], ['127.0.0.1', '127.0.0.2'])
  t.ok(await waitFor(async () => (await fresh(url, 4)).includes('200 later') ? true : undefined, 15_000), 'the primary\'s new address reaches the workers')
  t.notOk((await fresh(url, 12)).includes('200 sick'), 'and never the address only the workers found')

  const metrics = await (await request(`${String(listening.admin)}/metrics`)).body.text()
  const lookups = /^portcullis_dns_lookups_total\{upstream="pool",result="ok"\} (\d+)$/m.exec(metrics)?.[1]
  t.ok(Number(lookups) > 0, `the primary's lookups are counted (${lookups})`)
  t.match(metrics, /^portcullis_upstream_target_healthy\{upstream="pool",target="http:\/\/127\.0\.0\.1:\d+"\} 1$/m, 'a target the workers send to')
})
