import t from 'tap'
import { request } from 'undici'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { until } from './helpers/wait.ts'

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

t.test('W3C trace context: continued when valid, started when absent or invalid, logged with every request', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const sent = async (headers: Record<string, string> = {}) => {
    const res = await request(`${gw.url}/a`, { headers })
    const body = await res.body.json() as { headers: Record<string, string> }
    return { traceparent: body.headers.traceparent as string, tracestate: body.headers.tracestate, id: res.headers['x-request-id'] as string }
  }

  const continued = await sent({ traceparent: PARENT, tracestate: 'vendor=abc,other=1' })
  const [, traceId, spanId, flags] = TRACEPARENT.exec(continued.traceparent) ?? []
  t.equal(traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'the caller\'s trace goes on')
  t.not(spanId, '00f067aa0ba902b7', 'with the gateway\'s own span as the upstream\'s parent')
  t.equal(flags, '01', 'flags kept')
  t.equal(continued.tracestate, 'vendor=abc,other=1', 'tracestate passed on as is')
  t.ok(await until(() => gw.logs.some(l => l.requestId === continued.id && l.traceId === '4bf92f3577b34da6a3ce929d0e0e4736')), 'the access log line has the trace id')

  const unsampled = await sent({ traceparent: PARENT.replace(/01$/, '00') })
  t.match(unsampled.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/, 'an unsampled trace stays unsampled')
  const future = await sent({ traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future-field' })
  t.match(future.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-/, 'a later version is read as version 00')
  // Sent on as version 00, flags it does not define are zeroed; sampled (01) and random (02) stay.
  for (const [version, incoming, kept] of [['00', 'ff', '03'], ['01', 'ff', '03'], ['00', '02', '02'], ['00', 'fe', '02'], ['01', '85', '01']]) {
    const masked = await sent({ traceparent: `${version}-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-${incoming}` })
    t.match(masked.traceparent, new RegExp(`^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-${kept}$`), `version ${version} flags ${incoming} sent on as ${kept}`)
  }

  const fresh = [await sent(), await sent()].map(s => TRACEPARENT.exec(s.traceparent))
  t.ok(fresh.every(m => m !== null && m[3] === '01'), 'absent: a new, sampled trace')
  t.not(fresh[0]?.[1], fresh[1]?.[1], 'a different trace per request')

  for (const bad of [
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff is invalid
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero parent id
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // version 00 has exactly four fields
    'x00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' // not at the start
  ]) {
    const replaced = await sent({ traceparent: bad, tracestate: 'vendor=abc' })
    const m = TRACEPARENT.exec(replaced.traceparent)
    t.ok(m !== null && m[1] !== '4bf92f3577b34da6a3ce929d0e0e4736' && m[1] !== '0'.repeat(32), `replaced: ${bad}`)
    t.equal(replaced.tracestate, undefined, `its tracestate dropped: ${bad}`)
  }
  t.equal((await sent({ tracestate: 'vendor=abc' })).tracestate, undefined, 'a tracestate without traceparent is dropped')
})
