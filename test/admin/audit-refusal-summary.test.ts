import t from 'tap'
import { request } from 'undici'
import { adminPort } from '../helpers/admin-port.ts'
import { until } from '../helpers/wait.ts'

// A window short enough to see its summary (read as the gateway's limiter is made).
process.env.PORTCULLIS_LOG_LIMIT_MS = '1000'

const TOKEN = 'admin-token-0123456789abcdef'

// The summary kept the first refusal's method and path: refusals of every method and path were
// presented as that many POSTs to /config/reload.
t.test('the summary of limited refusal lines names no method nor path: those it counts have many', async t => {
  const { gw } = await adminPort(t, TOKEN)
  const send = async (method: 'GET' | 'POST' | 'DELETE', path: string) => {
    const res = await request(`${gw.adminUrl as string}${path}`, { method })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await send('POST', '/config/reload'), 401)
  t.equal(await send('GET', '/routes'), 401)
  t.equal(await send('DELETE', '/plugins/cache/purge'), 401)
  const first = gw.logs.filter(l => l.msg === 'admin request refused')
  t.equal(first.length, 1, 'one line')
  t.match(first, [{ method: 'POST', path: '/config/reload', status: 401, error: 'unauthorized', clientIp: '127.0.0.1' }], 'the first is logged whole')
  const summaryOf = () => gw.logs.find(l => typeof l.msg === 'string' && l.msg.includes('more like "admin request refused"'))
  t.ok(await until(() => summaryOf() !== undefined), 'a summary once the window ends')
  const summary = summaryOf()
  t.match(summary, { level: 40, clientIp: '127.0.0.1', status: 401, error: 'unauthorized', suppressed: Number })
  t.notOk(summary !== undefined && ('method' in summary || 'path' in summary), 'neither method nor path in the summary')
})
