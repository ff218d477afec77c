import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, gatewayYaml } from '../reload/helpers.ts'

// Heads undici's parser refuses, after secrets: its HTTPParserError keeps the rest of the chunk it
// read as `data`, which the process logger (pino's serializer) logged whole with the error.
const HEADS = [
  'HTTP/1.1 200 OK\r\nSet-Cookie: sid=COOKIESECRET\r\nX-Echo: Bearer ECHOSECRET\r\nX-Bad\x01: v\r\nContent-Length: 2\r\n\r\nok',
  `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"access_token":"BODYSECRET"${' '.repeat(30_000)}}\r\n`
]

t.test('an upstream answer undici cannot parse is logged with its length, never its bytes', async t => {
  let answered = 0
  const upstream = createServer(socket => { socket.once('data', () => socket.end(HEADS[answered++ % HEADS.length] as string)) })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => upstream.close(resolve)))
  const cf = await configFile(gatewayYaml({ u: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`] },
    '  - { name: r, match: { path: /r }, upstream: u }', 'logging: { level: info }'))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], { PORTCULLIS_LOG_LIMIT_MS: '0' })
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)

  for (let i = 0; i < HEADS.length; i++) {
    const res = await request(`${String(ready?.url)}/r`, { headers: { authorization: 'Bearer ECHOSECRET' } })
    await res.body.dump().catch(() => {})
  }
  const failed = (await cli.waitForLine(l => l.msg === 'upstream request failed' && (l.err as { message?: string }).message?.includes('Invalid header') === true))?.err
  t.match(failed, { type: 'HTTPParserError', dataBytes: Number }, 'the error, and how many bytes it held')
  t.equal((failed as { data?: unknown } | undefined)?.data, undefined, 'not the bytes')
  const chunk = (await cli.waitForLine(l => l.msg === 'upstream request failed' && (l.err as { message?: string }).message?.includes('chunk size') === true))?.err
  t.match(chunk, { type: 'HTTPParserError', dataBytes: Number })
  t.ok(((chunk as { dataBytes?: number } | undefined)?.dataBytes ?? 0) > 30_000, 'a body of 30 KB counted')
  await stopCli(cli)
  t.notMatch(JSON.stringify(cli.lines), /SECRET/, 'no secret in the log')
})
