import t from 'tap'
import { request } from 'undici'
import { spawnCli, stopCli } from './helpers/cli.ts'
import { configFile } from './reload/helpers.ts'
import { startUpstream } from './helpers/upstream.ts'
import { h2Connect, h2Request } from './helpers/http2.ts'

// The real process logger (createLogger, as `portcullis start` makes it), not a test logger:
// its redaction list is what keeps credentials out of production logs.
t.test('logging.headers: both directions logged, credentials redacted', async t => {
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'set-cookie': 'session=s3cret-cookie', 'x-upstream': 'yes', 'content-type': 'text/plain' }).end('ok'.repeat(1000))
  })
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
logging: { level: info, headers: true }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
  - { name: compressed, match: { path: /z }, upstream: up, plugins: { compress: { encodings: [gzip] } } }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([up.close(), cf.remove()]) })
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)
  const secrets = { authorization: 'Bearer s3cret-token', cookie: 'sid=s3cret-sid', 'x-api-key': 's3cret-key', 'proxy-authorization': 'Basic s3cret' }
  const res = await request(`${String(ready?.url)}/x`, { headers: { ...secrets, 'x-visible': 'fine' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const line = await cli.waitForLine(l => l.msg === 'request')
  t.match(line, {
    reqHeaders: { 'x-visible': 'fine', authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', 'proxy-authorization': '[redacted]' },
    resHeaders: { 'x-upstream': 'yes', 'set-cookie': '[redacted]', 'x-request-id': String }
  })
  // A body through a plugin's stream: the head is written with its first byte, and logged as written.
  const z = await request(`${String(ready?.url)}/z`, { headers: { 'accept-encoding': 'gzip', 'x-request-id': 'compressed' } })
  t.equal(z.headers['content-encoding'], 'gzip')
  await z.body.dump()
  t.match(await cli.waitForLine(l => l.msg === 'request' && l.requestId === 'compressed'), { resHeaders: { 'content-encoding': 'gzip', vary: /accept-encoding/i } })
  t.notOk(JSON.stringify(cli.lines).includes('s3cret'), 'no secret anywhere in the log')
})

t.test('logging.headers over HTTP/2: no pseudo-headers, so no query (an API key may be in :path)', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
logging: { level: info, headers: true }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([up.close(), cf.remove()]) })
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)
  const session = await h2Connect(String(ready?.h2c))
  t.teardown(() => session.destroy())
  const res = await h2Request(session, { ':path': '/k/a?api_key=s3cret-key', 'x-visible': 'fine' })
  t.equal(res.status, 200)
  const line = await cli.waitForLine(l => l.msg === 'request')
  t.match(line, { path: '/k/a', protocol: 'HTTP/2', reqHeaders: { 'x-visible': 'fine' } })
  t.same(Object.keys(line?.reqHeaders as object).filter(h => h.startsWith(':')), [], 'no pseudo-header logged')
  t.notOk(JSON.stringify(cli.lines).includes('s3cret'), 'no secret anywhere in the log')
})
