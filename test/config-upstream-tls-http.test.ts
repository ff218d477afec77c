import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { formatIssue } from '../src/config/config-error.ts'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'

// An upstream's `tls` applies to its https:// targets only: on http:// ones it was accepted without a
// word, and their requests went in clear while the config read as if they were encrypted.

const config = (targets: string, tls = '\n    tls: { servername: billing.internal }') => `upstreams:
  billing:
    targets: [ ${targets} ]${tls}
routes:
  - { name: all, match: { path: /* }, upstream: billing }
`

async function warnings (text: string): Promise<string[]> {
  return ((await parseConfig(`server:\n  listen: { port: 8080 }\n${text}`, 'gw.yaml', {})).warnings ?? []).map(formatIssue)
}

t.test('tls on an upstream whose targets are all http:// is a warning at its key; the config still loads', async t => {
  t.same(await warnings(config('{ url: "http://10.0.0.5:3000" }, { url: "http://10.0.0.6:3000" }')), [
    'gw.yaml:6:5 upstreams.billing.tls: is not used: it applies to https:// targets only, and every target here is http:// (reached without TLS; write https:// to use it)'
  ])
})

t.test('with https:// targets too, the http:// ones are named', async t => {
  t.same(await warnings(config('{ url: "https://10.0.0.5:8443" }, { url: "http://10.0.0.6:3000" }')), [
    'gw.yaml:6:5 upstreams.billing.tls: applies to https:// targets only: targets[1] is http://, reached without TLS'
  ])
})

t.test('no warning for https:// targets, nor for http:// ones without tls', async t => {
  t.same(await warnings(config('{ url: "https://10.0.0.5:8443" }')), [])
  t.same(await warnings(config('{ url: "http://10.0.0.5:3000" }', '')), [])
})

t.test('the gateway logs it at load, and serves the http:// target (in clear, as before)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(config(`{ url: "${up.url}" }`))
  t.teardown(() => gw.close())
  t.match(gw.logs.filter(l => l.path === 'upstreams.billing.tls'), [{ level: 40, msg: /^is not used: it applies to https:\/\/ targets only/ }])
  const res = await fetch(`${gw.url}/x`)
  await res.arrayBuffer()
  t.equal(res.status, 200)
})
