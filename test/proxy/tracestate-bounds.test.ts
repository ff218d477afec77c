import t from 'tap'
import { request } from 'undici'
import { boundedTracestate } from '../../src/proxy/trace-context.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// W3C Trace Context: tracestate holds at most 32 members; a propagator that must cut it to 512
// characters drops members over 128 characters first, then members from the end; an invalid one
// is not propagated. The upstream gets it so bounded (it got any size before).

const members = (n: number, value = 'v') => Array.from({ length: n }, (_, i) => `k${i}=${value}`)

t.test('boundedTracestate', async t => {
  t.equal(boundedTracestate('vendor=abc,other=1'), 'vendor=abc,other=1', 'within bounds: as is')
  t.equal(boundedTracestate(' a=1 ,,\tb=x y\t, '), 'a=1,b=x y', 'empty members and white space around members go')
  t.equal(boundedTracestate(['a=1', 'b=2']), 'a=1,b=2', 'header lines joined')
  t.equal(boundedTracestate('tenant@vendor=x,0t@v=1,k/*_-=~!'), 'tenant@vendor=x,0t@v=1,k/*_-=~!', 'multi-tenant keys, every allowed character')
  t.equal(boundedTracestate(members(40).join(',')), members(32).join(','), 'more than 32 members: the first 32')
  for (const bad of ['a=1,B=2', 'a=1,b', 'a=1,b=', 'a=1,b=x=y', '1a=1', 'a=1,a=2', 'a=caf\u00e9', `a=${'x'.repeat(257)}`, 'a=1;b=2']) {
    t.equal(boundedTracestate(bad), undefined, `invalid, dropped: ${bad}`)
  }
  t.equal(boundedTracestate(' , '), undefined, 'no member: none')
  // 9 members of 62 characters: 566 with their commas; 8 make 503.
  const wide = members(9, 'x'.repeat(58))
  t.equal(boundedTracestate(wide.join(',')), wide.slice(0, 8).join(','), 'over 512 characters: members dropped from the end')
  // Two members over 128 characters among short ones: those go first, from the end, as long as it is over 512.
  const long = (key: string) => `${key}=${'y'.repeat(150)}`
  const mixed = [long('l0'), ...members(3, 'x'.repeat(58)), long('l1'), long('l2'), 'z=1']
  t.equal(boundedTracestate(mixed.join(',')), [long('l0'), ...members(3, 'x'.repeat(58)), long('l1'), 'z=1'].join(','), 'a long member from the end, enough to fit')
  const longer = [long('l0'), long('l1'), long('l2'), long('l3'), ...members(3, 'x'.repeat(58))]
  t.equal(boundedTracestate(longer.join(',')), [long('l0'), long('l1'), ...members(3, 'x'.repeat(58))].join(','), 'long ones before the short ones after them')
  const stillOver = [long('l0'), ...members(9, 'x'.repeat(58))]
  t.equal(boundedTracestate(stillOver.join(',')), members(8, 'x'.repeat(58)).join(','), 'every long one gone and still over: from the end')
  for (const header of [members(40).join(','), wide.join(','), mixed.join(',')]) {
    const bounded = boundedTracestate(header) as string
    t.ok(bounded.length <= 512 && bounded.split(',').length <= 32, 'within bounds')
  }
})

t.test('the upstream gets the tracestate bounded, or none if it is invalid', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const sent = async (tracestate: string | string[]) => {
    const res = await request(`${gw.url}/a`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate } })
    return ((await res.body.json()) as { headers: Record<string, string | undefined> }).headers.tracestate
  }
  t.equal(await sent('vendor=abc,other=1'), 'vendor=abc,other=1', 'within bounds: as is')
  t.equal(await sent(members(40).join(',')), members(32).join(','), '40 members: the first 32')
  t.equal(await sent([members(20).join(','), members(40).slice(20).join(',')]), members(32).join(','), 'over two header lines too')
  const wide = members(9, 'x'.repeat(58))
  t.equal(await sent(wide.join(',')), wide.slice(0, 8).join(','), 'over 512 characters: cut to fit')
  t.equal(await sent('vendor=abc,Bad=1'), undefined, 'invalid: not sent')
})
