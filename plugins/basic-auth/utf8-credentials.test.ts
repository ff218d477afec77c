import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { hashPassword } from './password-hash.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Invalid UTF-8 was read with U+FFFD for each bad byte: a password hashed as `caf\uFFFD` took
// `caf\xff` and `caf\x80`, other passwords a client may well hold.
t.test('credentials that are not UTF-8 are malformed, not read with U+FFFD', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const hash = await hashPassword('caf\uFFFD', { ln: 10, r: 8, p: 1 })
  const gw = await startGateway(`
consumers:
  - { id: dave, credentials: { basic-auth: { username: dave, password: "${hash}" } } }
  - { id: bom, credentials: { basic-auth: { username: "\\uFEFFbom", password: "${hash}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { basic-auth: { failures: false } } }
`)
  t.teardown(() => gw.close())
  const call = async (bytes: Buffer) => {
    const res = await request(`${gw.url}/r`, { headers: { authorization: `Basic ${bytes.toString('base64')}` } })
    return { status: res.statusCode, body: await res.body.json() as { headers?: Record<string, string>, requestId?: string } }
  }
  const right = await call(Buffer.from('dave:caf\uFFFD'))
  t.equal(right.status, 200, 'U+FFFD sent as UTF-8 (EF BF BD) is the password')
  t.equal(right.body.headers?.['x-consumer-id'], 'dave')
  for (const bad of [[0xff], [0x80], [0xc3], [0xed, 0xa0, 0x80]]) {
    const r = await call(Buffer.concat([Buffer.from('dave:caf'), Buffer.from(bad)]))
    t.equal(r.status, 401, `caf + ${Buffer.from(bad).toString('hex')}`)
    t.ok(await waitForLog(gw.logs, { requestId: r.body.requestId, reason: 'malformed' }), 'refused as malformed')
  }
  t.equal((await call(Buffer.from('\uFEFFbom:caf\uFFFD'))).body.headers?.['x-consumer-id'], 'bom', 'a BOM is part of the user name, kept')
  t.equal((await call(Buffer.from('bom:caf\uFFFD'))).status, 401, 'and not dropped: "bom" is another user')
})
