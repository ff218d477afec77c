import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway } from './helpers/gateway.ts'
import { rawRequest } from './helpers/raw-http.ts'
import { runCliHere } from './helpers/run-cli.ts'
import { deadPort } from './helpers/upstream.ts'

// Node's parser refuses a Content-Length it cannot read, or more than one (even equal), or one
// with Transfer-Encoding: the gateway answers 400 before routing, where explain showed a route
// and exited 0. Each case is sent to a gateway too, so explain is held to what it answers.
const CASES: Array<[headers: string[], refused: boolean, body?: string]> = [
  [['content-length: abc'], true],
  [['content-length: 5', 'content-length: 6'], true],
  [['content-length: 0', 'Content-Length: 0'], true],
  [['content-length: 0, 0'], true],
  [['content-length: +1'], true],
  [['content-length: -1'], true],
  [['content-length: 18446744073709551616'], true],
  [['content-length: 0', 'transfer-encoding: chunked'], true, '0\r\n\r\n'],
  [['content-length: 0'], false],
  [['content-length: 007'], false, 'seven!!'],
  [['content-length: 18446744073709551615'], false]
]

t.test('explain refuses the Content-Length the gateway answers 400 for, and only that', async t => {
  const yaml = `upstreams:
  app: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-explain-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${yaml}`)
  const gw = await startGateway(yaml)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  for (const [headers, refused, body] of CASES) {
    const name = headers.join(' + ')
    // With the body its length says, where one can be sent (a gateway waiting for the rest would answer only at a timeout).
    const res = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: a', 'Connection: close', ...headers], body)
    t.equal(res.status === 400, refused, `${name}: the gateway answers ${res.status}`)
    const run = await runCliHere('explain', '-c', file, ...headers.flatMap(h => ['-H', h]), 'GET', '/x')
    t.equal(run.code, refused ? 1 : 0, `${name}: explain exits ${refused ? 1 : 0}`)
    if (refused) t.match(run.stdout, /^ {2}→ 400 bad_request: the gateway's HTTP parser refuses /m, name)
    else t.match(run.stdout, /^ {2}route {12}app /m, name)
  }
})
