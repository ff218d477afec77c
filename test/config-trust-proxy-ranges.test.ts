import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { compileTrust } from '../src/proxy/forwarded.ts'
import { issues } from './helpers/config-issues.ts'
import { startGateway } from './helpers/gateway.ts'
import { runCli } from './helpers/run-cli.ts'
import { startUpstream } from './helpers/upstream.ts'

// server.trustProxy entries one a line, from line 4, at column 7.
const withTrust = (entries: string[], upstream = 'http://127.0.0.1:3001') => `server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy:
${entries.map(e => `    - "${e}"`).join('\n')}
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`

t.test('a trustProxy entry proxy-addr would read otherwise than written is a config error at its line', async t => {
  t.same(await issues(t, withTrust([
    '10.0.0.5/8', '1.2.3.4/1', '::ffff:1.2.3.4/97', '2001:db8::1/32', '10.0.0.0/08', '10.0.0.0/255.0.0.0', '010.0.0.1', 'fe80::1%eth0', '1.2.3.4/0'
  ])), [
    'gw.yaml:4:7 server.trustProxy[0]: "10.0.0.5/8" has bits set past its prefix length: did you mean 10.0.0.0/8, or 10.0.0.5/32?',
    'gw.yaml:5:7 server.trustProxy[1]: "1.2.3.4/1" has bits set past its prefix length: did you mean 0.0.0.0/1, or 1.2.3.4/32?',
    // proxy-addr trusted all of 0.0.0.0/1 for it: half of every IPv4 address.
    'gw.yaml:6:7 server.trustProxy[2]: "::ffff:1.2.3.4/97" has bits set past its prefix length: did you mean ::ffff:0.0.0.0/97, or ::ffff:1.2.3.4/128?',
    'gw.yaml:7:7 server.trustProxy[3]: "2001:db8::1/32" has bits set past its prefix length: did you mean 2001:db8::/32, or 2001:db8::1/128?',
    'gw.yaml:8:7 server.trustProxy[4]: "10.0.0.0/08": write the prefix length without a leading zero (/8)',
    'gw.yaml:9:7 server.trustProxy[5]: "10.0.0.0/255.0.0.0": write the prefix length, not a netmask (10.0.0.0/8)',
    // proxy-addr reads it as octal: 8.0.0.1.
    'gw.yaml:10:7 server.trustProxy[6]: "010.0.0.1" is not an IPv4 or IPv6 address or CIDR range',
    'gw.yaml:11:7 server.trustProxy[7]: "fe80::1%eth0": a zone (%name) is not supported, it would match every interface; remove it',
    // proxy-addr's own refusal, as before.
    'gw.yaml:12:7 server.trustProxy[8]: invalid range on address: 1.2.3.4/0 (an address, a CIDR range, or loopback, linklocal, uniquelocal)'
  ])
})

t.test('addresses, ranges without bits past their prefix length and proxy-addr\'s names still load', async t => {
  const good = ['loopback', 'linklocal', 'uniquelocal', '192.0.2.7', '10.0.0.0/8', '10.1.2.2/31', '192.0.2.7/32', '::1', '2001:db8::/32',
    'fe80::/10', '::ffff:192.0.2.7', '::ffff:10.0.0.0/104']
  const loaded = await parseConfig(withTrust(good), 'gw.yaml', {})
  t.same(loaded.config.server.trustProxy, good)
  // An IPv4-mapped range is read as written: ::ffff:10.0.0.0/104 is 10.0.0.0/8, no wider.
  const trusts = compileTrust(['::ffff:10.0.0.0/104'])
  t.same(['10.1.2.3', '::ffff:10.1.2.3', '11.0.0.1', '9.255.255.255', '203.0.113.9'].map(a => trusts(a, 0)), [true, true, false, false, false])
})

t.test('with a refused range the gateway does not start and validate exits 1; the range it meant trusts the proxy', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const refused = startGateway(withTrust(['127.0.0.5/8'], up.url))
  // Without the check it starts: closed, so that the test ends.
  t.teardown(() => refused.then(gw => gw.close(), () => undefined))
  await t.rejects(refused, { message: /server\.trustProxy\[0\]: "127\.0\.0\.5\/8" has bits set past its prefix length: did you mean 127\.0\.0\.0\/8, or 127\.0\.0\.5\/32\?/ })

  const dir = mkdtempSync(join(tmpdir(), 'portcullis-trust-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gw.yaml')
  writeFileSync(file, withTrust(['::ffff:127.0.0.1/97'], up.url))
  const run = await runCli('validate', '-c', file)
  t.same([run.code, run.stdout, run.stderr.trim().split('\n')], [1, '', [
    'invalid configuration (1 problem):',
    `${file}:4:7 server.trustProxy[0]: "::ffff:127.0.0.1/97" has bits set past its prefix length: did you mean ::ffff:0.0.0.0/97, or ::ffff:127.0.0.1/128?`
  ]])

  const gw = await startGateway(withTrust(['127.0.0.0/8'], up.url))
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal((await res.body.json() as { headers: Record<string, string> }).headers['x-real-ip'], '203.0.113.9', 'the loopback peer is trusted')
})
