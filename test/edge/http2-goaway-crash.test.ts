import t from 'tap'
import { constants, type ClientHttp2Session } from 'node:http2'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'

// A client that trips a limit (rapid reset, settings flood: the defaults, 100 resets, 20 SETTINGS)
// and sends GOAWAY PROTOCOL_ERROR in the same write: Node destroys the session on that GOAWAY before
// the gateway's cut runs, whose goaway() then threw ERR_HTTP2_INVALID_SESSION in a setImmediate,
// ending the process.

const H2C = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }'

const floods: Record<string, (s: ClientHttp2Session) => void> = {
  'rapid reset': s => {
    for (let i = 0; i < 120; i++) {
      const stream = s.request({ ':path': `/r${i}` })
      stream.on('error', () => {})
      stream.close(constants.NGHTTP2_CANCEL)
    }
  },
  'settings flood': s => { for (let i = 0; i < 30; i++) s.settings({ enablePush: false }) }
}

// Node's client over TLS sends streams it cancels at once too late to trip the rapid reset limit: that one over h2c only.
const cases: Array<[boolean, string]> = [[true, 'rapid reset'], [true, 'settings flood'], [false, 'settings flood']]

for (const [h2c, name] of cases) {
  t.test(`${h2c ? 'h2c' : 'TLS'}: ${name} then GOAWAY PROTOCOL_ERROR in one write: the connection is cut, the gateway stays up`, async t => {
    const up = await startUpstream((_req, res) => res.end('ok'))
    t.teardown(() => up.close())
    const { gw, connect } = await startH2Gateway(t, H2C, catchAllYaml(up.url))
    const session = await connect({ h2c, maxOutstandingSettings: 1_000 })
    session.on('error', () => {})
    ;(floods[name] as (s: ClientHttp2Session) => void)(session)
    session.goaway(constants.NGHTTP2_PROTOCOL_ERROR)
    // Logged as the cut is decided; the cut itself runs a turn later (setImmediate).
    t.ok(await until(() => gw.logs.some(l => l.level === 40 && l.reason !== undefined)), 'the cut is logged')
    await new Promise(resolve => setTimeout(resolve, 0))
    await new Promise(resolve => setImmediate(resolve))
    const other = await connect({ h2c })
    t.equal((await h2Request(other, { ':path': '/after' })).body.toString(), 'ok', 'another client is served')
  })
}
