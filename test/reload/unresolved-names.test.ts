import t, { type Test } from 'tap'
import { promises as dnsPromises, type LookupOptions } from 'node:dns'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { configFile, gatewayYaml, startFromFile } from './helpers.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { runCliHere } from '../helpers/run-cli.ts'
import { startCluster } from '../workers/helpers.ts'
import { LOOKUP_TIMEOUT_MS, UNRESOLVED_MESSAGE } from '../../src/upstreams/unresolved-targets.ts'
import { fakeDns } from '../helpers/fake-dns.ts'

// A target whose host name never resolves was taken without a word: every request a 502, and only
// a rate-limited `upstream request failed` to say why. Its name is now looked up once the config
// is in service, and a failure logged once: a warning, the config kept (split-horizon DNS).

/**
 * A DNS server (see fakeDns) for this process's queries: gone*.test and hosts.test are not found,
 * hang.test never answered, svc.test answers 127.0.0.1; dns.lookup (the system resolver) finds
 * hosts.test, as /etc/hosts would. Returns the names dns.lookup was asked.
 */
async function fakeResolvers (t: Test): Promise<string[]> {
  const server = await fakeDns(name => name === 'svc.test' ? { a: '127.0.0.1' } : name === 'hang.test' ? 'none' : 'nxdomain')
  const servers = dnsPromises.getServers()
  dnsPromises.setServers([server.server])
  const asked: string[] = []
  const lookup = dnsPromises.lookup
  dnsPromises.lookup = (async (host: string, options?: LookupOptions) => {
    asked.push(host)
    if (host === 'hosts.test') return { address: '127.0.0.1', family: 4 }
    if (host.startsWith('gone')) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    return await lookup(host, options ?? {})
  }) as typeof lookup
  t.teardown(async () => {
    dnsPromises.lookup = lookup
    dnsPromises.setServers(servers)
    await server.close()
  })
  return asked
}

const routes = '  - { name: all, match: { path: /* }, upstream: a }'

t.test('a target host name that does not resolve is a warning at start and on reload, once, for new or changed targets only', async t => {
  const asked = await fakeResolvers(t)
  const upstreams = { a: ['http://gone.test:80'], b: ['http://svc.test:81', 'http://127.0.0.1:82', 'http://localhost:83', 'http://[::1]:84', 'http://hosts.test:85'] }
  const cf = await configFile(gatewayYaml(upstreams, routes))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const warnings = () => gw.logs.filter(l => l.msg === UNRESOLVED_MESSAGE)

  t.ok(await waitForLog(gw.logs, { msg: UNRESOLVED_MESSAGE, upstream: 'a', target: 'http://gone.test:80', code: 'ENOTFOUND', level: 40 }), 'warned at start')
  t.equal(warnings().length, 1, 'and for nothing else: svc.test resolves, hosts.test is in the hosts file')
  t.same(asked.sort(), ['gone.test', 'hosts.test'], 'the system resolver is asked only of names DNS has no address for; neither localhost nor an address is looked up')

  // Unchanged targets are not looked up again; a new one is, and one that hangs holds nothing up.
  asked.length = 0
  await cf.write(gatewayYaml({ ...upstreams, c: ['http://gone2.test:80'], d: ['http://hang.test:80'] }, routes))
  const started = performance.now()
  t.match(await gw.reloader.reload('admin'), { result: 'success' }, 'the reload succeeds: a warning, not a rejection')
  t.ok(performance.now() - started < LOOKUP_TIMEOUT_MS, 'without waiting for the lookups')
  t.ok(await waitForLog(gw.logs, { msg: UNRESOLVED_MESSAGE, upstream: 'd', target: 'http://hang.test:80', code: 'ETIMEOUT' }), 'a lookup that does not answer is one too, once its time is up')
  t.ok(gw.logs.some(l => l.msg === UNRESOLVED_MESSAGE && l.upstream === 'c' && l.code === 'ENOTFOUND'), 'the new target is warned of')
  t.equal(warnings().length, 3, 'gone.test, unchanged, not again')
  t.same(asked.sort(), ['gone2.test'], 'only the new names were looked up; the one DNS does not answer not through the system resolver, whose thread it would hold ~10 s')
})

t.test('validate prints it as a located warning, and exits 0', async t => {
  await fakeResolvers(t)
  const file = join(t.testdir({}), 'gateway.yaml')
  writeFileSync(file, gatewayYaml({ a: ['http://gone.test:80'], b: ['http://svc.test:81', 'http://localhost:82'] }, routes))
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0)
  t.equal(run.stderr, `${file}:7:21 warning: upstreams.a.targets[0].url: host name "gone.test" does not resolve here (ENOTFOUND): requests to this target fail until it does\n`)
})

// Names not begun by the 2 s limit were left out without a word (300 names: some 210), and one
// begun a moment before it was reported ETIMEOUT though it resolves.
t.test('validate: names it has no time for are counted in one warning; none is begun too late to answer', async t => {
  const server = await fakeDns(name => name.startsWith('hang') ? 'none' : { a: '127.0.0.1', afterMs: 300 })
  const servers = dnsPromises.getServers()
  dnsPromises.setServers([server.server])
  t.teardown(async () => { dnsPromises.setServers(servers); await server.close() })
  const dir = t.testdir({})
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `http://${prefix}${i}.test:80`)

  writeFileSync(join(dir, 'hang.yaml'), gatewayYaml({ a: names('hang', 300) }, routes))
  const hung = await runCliHere('validate', '-c', join(dir, 'hang.yaml'))
  t.equal(hung.code, 0)
  const timedOut = hung.stderr.split('\n').filter(l => l.includes('(ETIMEOUT)')).length
  t.ok(timedOut > 0, `${timedOut} names had no answer`)
  t.match(hung.stderr, `${join(dir, 'hang.yaml')}: warning: ${300 - timedOut} target names not checked (2 s limit)\n`, 'the others are counted')

  // Each answered in 300 ms: none begun in the last 500 ms, so none is reported for want of time.
  writeFileSync(join(dir, 'slow.yaml'), gatewayYaml({ a: names('slow', 100) }, routes))
  const slow = await runCliHere('validate', '-c', join(dir, 'slow.yaml'))
  t.notMatch(slow.stderr, 'ETIMEOUT', 'no name reported for want of time')
  t.match(slow.stderr, /: warning: \d+ target names not checked \(2 s limit\)\n/)
})

t.test('workers: the primary looks the names up, not each worker', async t => {
  const cluster = await startCluster(t, '  a: { targets: [ { url: "http://no-such-host.invalid:80" } ] }', routes)
  const warned = (l: Record<string, unknown>) => l.msg === UNRESOLVED_MESSAGE
  const line = await cluster.cli.waitForLine(warned, 10_000)
  t.match(line, { upstream: 'a', target: 'http://no-such-host.invalid:80', code: /^E[A-Z_]+$/, worker: undefined }, 'warned by the primary')
  // Each worker's lookup, were there one, would start as it listens, before the primary's; and the
  // workers build the reload before it is answered. Their lines reach stdout a little later.
  t.ok(await until(() => cluster.cli.lines.filter(l => l.msg === 'worker listening').length === 2, 10_000), 'both workers listened')
  await cluster.reload(routes.replace('name: all', 'name: all-2'))
  t.equal(cluster.cli.lines.filter(warned).length, 1, 'once: not by the workers, nor again for an unchanged target')
})
