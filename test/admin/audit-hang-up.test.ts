import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { adminPort } from '../helpers/admin-port.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

const TOKEN = 'admin-token-0123456789abcdef'

// The audit line was written once the answer was sent (onResponse), which never happens for a
// client gone before it: a token holder could reload, or purge, and hang up, unattributed.
t.test('a call whose client hangs up at once is still logged as an admin call, once', async t => {
  const { gw, port, raw } = await adminPort(t, TOKEN)
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const head = ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'Content-Length: 0'].join('\r\n')
  socket.write(`${head}\r\n\r\n`, () => socket.destroy())
  await once(socket, 'close')

  t.ok(await waitForLog(gw.logs, { msg: 'config reloaded', trigger: 'admin' }), 'the reload ran')
  t.match(await waitForLog(gw.logs, { msg: 'admin call' }), { level: 30, clientIp: '127.0.0.1', method: 'POST', path: '/config/reload', status: 200, trigger: 'admin' }, 'and is attributed')

  // A reload answered next: one more line, the hung-up call's not repeated.
  t.equal((await raw(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`])).status, 200)
  const calls = () => gw.logs.filter(l => l.msg === 'admin call')
  t.ok(await until(() => calls().length === 2), 'the answered one is logged')
  t.equal(calls().length, 2, 'a line per call')
  t.notMatch(JSON.stringify(gw.logs), TOKEN, 'no token logged')
})
