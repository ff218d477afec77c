import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnNode, stopCli } from '../helpers/cli.ts'

// The check asked of a slow name asked the DNS servers node:dns read from /etc/resolv.conf at start;
// glibc reads the file again when it changes (a DHCP lease, a VPN), so a name the new servers answered
// stayed marked slow. In a network and mount namespace of its own (as root, where allowed): a
// resolv.conf bind-mounted over the real one, DNS servers on 127.0.0.2 (silent) and 127.0.0.3.

const canUnshare = spawnSync('unshare', ['-n', '-m', 'true']).status === 0

const child = (hosts: string, resolvConf: string) => `
import { createSocket } from 'node:dgram'
import { writeFileSync } from 'node:fs'
import { dnsAnswers } from ${JSON.stringify(new URL('../../src/upstreams/dns-deadline.ts', import.meta.url).href)}
const bind = address => new Promise(resolve => { const s = createSocket('udp4'); s.bind(53, address, () => resolve(s)) })
const silent = await bind('127.0.0.2')
const nx = await bind('127.0.0.3')
// NXDOMAIN: the query's id and question, QR + RD + RA, RCODE 3.
nx.on('message', (q, from) => nx.send(Buffer.concat([q.subarray(0, 2), Buffer.from([0x81, 0x83]), q.subarray(4, 6), Buffer.alloc(6), q.subarray(12)]), from.port, from.address))
const answers = () => dnsAnswers('x.test', performance.now() + 300, undefined, ${JSON.stringify(hosts)})
const before = await answers()
writeFileSync(${JSON.stringify(resolvConf)}, 'nameserver 127.0.0.3\\n')
console.log(JSON.stringify({ before, after: await answers() }))
silent.close(); nx.close()
`

t.test('a change to /etc/resolv.conf: the new servers are asked', { skip: canUnshare ? false : 'no network and mount namespace can be made here' }, async t => {
  const dir = t.testdir({})
  const resolvConf = join(dir, 'resolv.conf')
  writeFileSync(resolvConf, 'nameserver 127.0.0.2\n')
  const hosts = join(dir, 'hosts')
  writeFileSync(hosts, '')
  const script = join(dir, 'child.mjs')
  writeFileSync(script, child(hosts, resolvConf))
  const cli = spawnNode(['--import', new URL('../helpers/typescript-loader.mjs', import.meta.url).pathname, script], {}, {
    wrapper: ['unshare', '-n', '-m', 'sh', '-c', 'ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf]
  })
  t.teardown(() => stopCli(cli))
  const line = await cli.waitForLine(l => 'after' in l, 20_000)
  t.same(line, { before: false, after: true }, 'the silent server, then the new one', { stderr: cli.stderr() })
})
