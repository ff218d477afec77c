import t from 'tap'
import { promises as dnsPromises } from 'node:dns'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gatewayYaml } from '../reload/helpers.ts'
import { runCliHere } from '../helpers/run-cli.ts'
import { fakeDns } from '../helpers/fake-dns.ts'
import { hostsFileNames } from '../../src/upstreams/hosts-file.ts'

// With a DNS that never answers, the target name check reported names /etc/hosts holds (which every
// connection finds there at once) as not resolving (ETIMEOUT): only a name the DNS said it had no
// address for was looked up through the system resolver.

// The names this machine's /etc/hosts gives an address, localhost (never checked) aside.
const names = [...await hostsFileNames()].filter(n => n !== 'localhost' && URL.canParse(`http://${n}:80`))

t.test('validate, the DNS never answering: names in /etc/hosts resolve, the others are ETIMEOUT, and no system lookup is left hanging', { skip: names.length === 0 && 'no name in /etc/hosts but localhost' }, async t => {
  const server = await fakeDns(() => 'none')
  const servers = dnsPromises.getServers()
  dnsPromises.setServers([server.server])
  t.teardown(async () => { dnsPromises.setServers(servers); await server.close() })
  const file = join(t.testdir({}), 'gateway.yaml')
  writeFileSync(file, gatewayYaml({ a: names.map(n => `http://${n}:80`), b: ['http://hang.test:80'] }, '  - { name: all, match: { path: /* }, upstream: a }'))
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0)
  const warned = run.stderr.split('\n').filter(l => l !== '')
  t.same(warned.filter(l => names.some(n => l.includes(`"${n}"`))), [], `not warned of: ${names.join(', ')}`)
  t.match(warned, [/upstreams\.b\.targets\[0\]\.url: host name "hang\.test" does not resolve here \(ETIMEOUT\)/], 'a name the DNS does not answer is')
  t.equal(warned.length, 1)
  // A system lookup the DNS never answers would hold its thread, and the process's exit, ~10 s.
  t.notOk(process.getActiveResourcesInfo().includes('GetAddrInfoReqWrap'), 'no system lookup left under way')
  t.notOk(server.asked.some(n => names.includes(n)), 'the DNS is not asked of names in /etc/hosts')
})
