import cluster from 'node:cluster'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

// startPortcullis (the public API) in a node:cluster worker whose primary is not Portcullis' (PM2's
// cluster mode, an application's own cluster): a write's invalidation has no siblings to reach
// there. Asked of that primary, which never answers, each write waited for it (100 ms), and the
// call waiting was never forgotten.

const src = (file: string) => JSON.stringify(new URL(`../../src/${file}`, import.meta.url).href)

t.test('a write in a worker another primary forked passes nothing on to it', async t => {
  const worker = join(t.testdir({}), 'worker.ts')
  writeFileSync(worker, `import http from 'node:http'
import pino from 'pino'
import { request } from 'undici'
import { parseConfig } from ${src('config/load.ts')}
import { startPortcullis } from ${src('index.ts')}
const up = http.createServer((req, res) => { req.resume(); res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': 2 }).end('ok') })
await new Promise<void>(resolve => up.listen(0, '127.0.0.1', resolve))
const loaded = await parseConfig(\`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:\${(up.address() as { port: number }).port}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: {} } }
\`, 'gateway.yaml')
const gw = await startPortcullis(loaded, pino({ level: 'silent' }))
const statuses: string[] = []
for (const method of ['GET', 'POST', 'POST', 'POST']) {
  const res = await request(\`\${gw.url}/x\`, { method: method as 'GET' })
  await res.body.text()
  statuses.push(\`\${method} \${res.statusCode} \${String(res.headers['cache-status'])}\`)
}
await gw.close()
up.close()
process.send?.({ statuses }, () => process.exit(0))
`)
  cluster.setupPrimary({ exec: worker })
  const w = cluster.fork()
  const messages: unknown[] = []
  w.on('message', (m: unknown) => { messages.push(m) })
  const [code] = await once(w, 'exit') as [number]
  t.equal(code, 0, 'the worker ran its requests')
  t.same(messages, [{
    statuses: [
      'GET 200 Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60',
      'POST 200 Portcullis; fwd=method',
      'POST 200 Portcullis; fwd=method',
      'POST 200 Portcullis; fwd=method'
    ]
  }], 'its primary got no message of Portcullis\' own (a portcullis:siblings per write)')
})
