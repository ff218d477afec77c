import t from 'tap'
import { Agent, request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { echoed, h2Request, startH2Gateway } from '../helpers/http2.ts'

// A port past 65535 names no port: it went on to the upstream as X-Forwarded-Port 99999.
t.test('a Host or :authority with a port above 65535 is refused (400 bad_host), over HTTP/1.1 and HTTP/2', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, ca, connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url))
  const agent = new Agent({ connect: { ca: ca.cert } })
  t.teardown(() => agent.close())
  const session = await connect()
  for (const [port, status] of [['99999', 400], ['65536', 400], ['65535', 200]] as const) {
    const h1 = await request(`${gw.url}/h1`, { dispatcher: agent, headers: { host: `localhost:${port}` } })
    const h1Body = await h1.body.json() as { error?: string, headers?: Record<string, string> }
    const h2 = await h2Request(session, { ':path': '/h2', ':authority': `localhost:${port}` })
    t.equal(h1.statusCode, status, `HTTP/1.1 Host localhost:${port}`)
    t.equal(h2.status, status, `HTTP/2 :authority localhost:${port}`)
    if (status === 400) {
      t.equal(h1Body.error, 'bad_host')
      t.equal((JSON.parse(h2.body.toString()) as { error: string }).error, 'bad_host')
    } else {
      t.equal(h1Body.headers?.['x-forwarded-port'], port)
      t.equal(echoed(h2).headers['x-forwarded-port'], port)
    }
  }
})
