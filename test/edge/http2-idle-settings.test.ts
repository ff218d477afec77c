import t from 'tap'
import { constants, type ClientHttp2Session } from 'node:http2'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

/**
 * An HTTP/2 connection with no stream open is idle however many control frames its client sends:
 * Node's idle timer (session.setTimeout) restarted on each SETTINGS frame the gateway listens for
 * (the settings-flood guard), so an empty SETTINGS every 1.5 s kept a connection open for ever past a
 * keepAliveTimeout of 2 s, without a request or a log line.
 */
const H2C = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }'

const settings = (s: ClientHttp2Session) => { s.settings({}) }
const ping = (s: ClientHttp2Session) => { s.ping(() => {}) }

for (const [what, send, request] of [
  ['an empty SETTINGS frame', settings, false],
  ['an empty SETTINGS frame', settings, true],
  ['a PING', ping, true]
] as const) {
  t.test(`keepAliveTimeout: a connection whose client sends only ${what} every 300 ms ${request ? 'after a request' : 'from the start'} is closed once idle`, { timeout: 15_000 }, async t => {
    const up = await startUpstream()
    t.teardown(() => up.close())
    // 300 ms apart: 3 a second, which the settings-flood guard (20, then 2 a second) takes for 15 s.
    const { gw, connect } = await startH2Gateway(t, H2C, catchAllYaml(up.url), { server: '  keepAliveTimeout: 1s\n' })
    // Before the connection: its idle time cannot begin earlier. (After the request would be late: the
    // gateway's idle timer starts when its side of the stream closes, before the client has read it all.)
    const idleFrom = performance.now()
    const session = await connect({ h2c: true })
    session.on('error', () => {})
    let goaway: number | undefined
    session.once('goaway', (code: number) => { goaway = code })
    if (request) t.equal((await h2Request(session, { ':path': '/first' })).status, 200, 'idle from the end of the request')
    const timer = setInterval(() => { if (!session.closed && !session.destroyed) send(session) }, 300)
    t.teardown(() => clearInterval(timer))
    // 1 s idle, then the GOAWAY's linger (2 s at most). The SETTINGS frames held it open for ever.
    t.ok(await until(() => session.destroyed, 6_000), 'closed by the gateway')
    t.ok(performance.now() - idleFrom > 900, 'not before keepAliveTimeout')
    t.equal(goaway, constants.NGHTTP2_NO_ERROR, 'GOAWAY NO_ERROR: idle, not cut for a flood')
    t.notOk(gw.logs.some(l => l.reason === 'settings_flood'), 'no settings flood')
  })
}
