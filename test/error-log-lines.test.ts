import t from 'tap'
import { request } from 'undici'
import { catchAllGateway } from './helpers/catch-all.ts'
import { waitForLog } from './helpers/logs.ts'
import { deadPort } from './helpers/upstream.ts'

// A gateway-produced error is logged as a user reads logs: the access line counts its JSON body,
// and the failure line's err is what pino's error serializer makes of a real error.
t.test('a 502: access-log bytes is the JSON body sent, the failure line carries err type, message, code and stack', async t => {
  const gw = await catchAllGateway(t, `http://127.0.0.1:${await deadPort()}`)

  const res = await request(`${gw.url}/x`)
  t.equal(res.statusCode, 502)
  const body = await res.body.text()
  const id = res.headers['x-request-id']
  const access = await waitForLog(gw.logs, { msg: 'request', requestId: id })
  t.equal(access?.bytes, Buffer.byteLength(body), `bytes counts the ${Buffer.byteLength(body)}-byte error body`)
  t.ok(Buffer.byteLength(body) > 40, 'a body was sent')

  const failure = await waitForLog(gw.logs, { msg: 'upstream request failed', requestId: id })
  const err = failure?.err as Record<string, unknown> | undefined
  t.equal(err?.code, 'ECONNREFUSED')
  t.not(err?.type, 'Object', 'an Error, not a plain object')
  t.match(err, { type: /Error$/, message: /ECONNREFUSED|connect/, stack: /\n\s+at / })
})
