import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'

// A collector refusing an export with a 2 MB answer that echoes the export's headers past its first KiB.
const head = '{"code":3,"message":"bad export"}'.padEnd(2000, ' ')
const answer = `${head}Authorization: Bearer ECHOEDSECRET\n`.padEnd(2 * 1024 * 1024, 'x')

/**
 * A gateway whose opentelemetry plugin (`settings`, YAML lines below `opentelemetry:`) exports to a
 * collector answering with `answerWith`; a request sent through it, its warning line awaited.
 */
async function refusedExport (t: Test, answerWith: (req: IncomingMessage, res: ServerResponse) => void, settings: (endpoint: string) => string) {
  const collector = createServer((req, res) => {
    req.resume()
    req.on('end', () => answerWith(req, res))
  })
  await new Promise<void>(resolve => collector.listen(0, '127.0.0.1', resolve))
  const ok = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry:
${settings(`http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`)}
    flushInterval: 10ms
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`)
  t.teardown(async () => {
    await gw.close()
    collector.closeAllConnections()
    await Promise.all([ok.close(), new Promise(resolve => collector.close(resolve))])
  })
  await (await request(`${gw.url}/items`)).body.dump()
  return { gw, line: await waitForLog(gw.logs, { plugin: 'opentelemetry', level: 40 }, 30_000) }
}

t.test('a refused export is logged with its status and the start of the answer, never megabytes of it', async t => {
  const { gw, line } = await refusedExport(t, (req, res) => res.writeHead(400, { 'content-type': 'application/json' }).end(answer),
    endpoint => `    endpoint: "${endpoint}"\n    headers: { authorization: "Bearer ECHOEDSECRET" }`)
  t.match(line, { msg: /^span export failed/, err: { type: 'OTLPExporterError', message: 'Bad Request', code: 400 } })
  // What is left counts the header's value hidden (shorter).
  const left = answer.replace('Bearer ECHOEDSECRET', '[redacted]').length - 1024
  t.equal(line?.answer, `${answer.slice(0, 1024)}…(+${left} characters)`, 'the first KiB of the answer, marked as cut')
  t.ok(JSON.stringify(line).length < 4096, 'a line of a few KiB')
  t.notMatch(JSON.stringify(gw.logs), /ECHOEDSECRET/, 'the echoed header past the first KiB is not logged')
})

// A collector quoting the export's Authorization in the first words of its answer (the KiB shown).
t.test('the export\'s header values are hidden in the answer shown, the token alone or JSON-quoted too', async t => {
  const { gw, line } = await refusedExport(t, (req, res) => {
    const auth = String(req.headers.authorization)
    res.writeHead(401, { 'content-type': 'text/plain' })
      .end(`invalid credentials: ${auth}; token ${auth.slice('Bearer '.length)}; ${JSON.stringify({ tenant: req.headers['x-tenant'] })}`)
  }, endpoint => `    endpoint: "${endpoint}"\n    headers: { authorization: "Bearer OTLPTOKENSECRET", x-tenant: 'tenant "QUOTEDSECRET"' }`)
  t.match(line, { err: { type: 'OTLPExporterError', code: 401 } })
  t.equal(line?.answer, 'invalid credentials: [redacted]; token [redacted]; {"tenant":"[redacted]"}', 'the value, its token, and the value as JSON quotes it')
  t.notMatch(JSON.stringify(gw.logs), /SECRET/, 'no header value in the log')
})
