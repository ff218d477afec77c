import t from 'tap'
import type { ServerResponse } from 'node:http'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile } from '../reload/helpers.ts'

// A cluster worker at server.maxConnections handed the connection back to the primary, which offered
// it again at once: it waited, bounced over IPC, until a worker had room, and nothing was logged.
t.test('workers: server.maxConnections holds per worker; past it a connection is closed, and logged', async t => {
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => { req.resume(); held.push(res) })
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  maxConnections: 2
  shutdownTimeout: 2s
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: a }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([up.close(), cf.remove()]) })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const port = Number(new URL(String(primary.url)).port)
  const workers = primary.workers as number[]

  // One at a time, each until it reaches the upstream or is closed: the primary hands a connection to
  // whichever worker is free to take it, so a worker can be offered a third before the other has two.
  const answers: Promise<string>[] = []
  let settled = 0
  const request = (): number => answers.push(rawRequest(port, ['GET / HTTP/1.1', 'Host: x', 'Connection: close'])
    .then(r => String(r.status), (err: Error & { code?: string }) => err.code ?? err.message)
    .finally(() => { settled++ }))
  while (held.length < 4 && answers.length < 20) {
    const [before, settledBefore] = [held.length, settled]
    request()
    await until(() => held.length > before || settled > settledBefore, 10_000)
  }
  t.equal(held.length, 4, 'four requests reach the upstream: two a worker')
  // Both workers now hold two: a further connection is closed by whichever worker it is handed to.
  const closedBefore = settled
  request()
  request()
  await until(() => settled === closedBefore + 2 || held.length > 4, 10_000)
  t.equal(held.length, 4, 'both past the limits closed, neither reached the upstream')
  const refused = await cli.waitForLine(l => l.msg === 'connection limit reached: new connections are closed (server.maxConnections)', 10_000)
  t.match(refused, { level: 40, maxConnections: 2 }, 'logged as without workers')
  t.ok(workers.includes(refused?.pid as number), 'by a worker')
  for (const res of held) res.end('ok')
  const statuses = await Promise.all(answers)
  t.equal(statuses.filter(s => s === '200').length, 4, `four served (${statuses.join(', ')})`)
  t.equal(held.length, 4, 'none of the closed ones reached the upstream later')
})
