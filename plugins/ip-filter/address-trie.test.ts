import t from 'tap'
import { AddressTrie } from './address-trie.ts'
import { parseIp } from '../shared/parse-ip.ts'

t.test('parseIp', async t => {
  const out = new Uint8Array(16)
  const hex = (s: string) => parseIp(s, out) ? Buffer.from(out).toString('hex') : 'invalid'
  t.equal(hex('10.1.2.3'), '00000000000000000000ffff0a010203')
  t.equal(hex('::ffff:10.1.2.3'), '00000000000000000000ffff0a010203')
  t.equal(hex('::1'), '00000000000000000000000000000001')
  t.equal(hex('::'), '00000000000000000000000000000000')
  t.equal(hex('2001:db8::8:800:200c:417a'), '20010db8000000000008080020 0c417a'.replace(' ', ''))
  t.equal(hex('2001:DB8:0:0:8:800:200C:417A'), '20010db80000000000080800200c417a')
  t.equal(hex('fe80::1%eth0'), 'fe800000000000000000000000000001')
  t.equal(hex('2001:db8::'), '20010db8000000000000000000000000')
  for (const bad of ['', 'unknown', '1.2.3', '1.2.3.256', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', ':::', '10.0.0.1:8080', 'g::1']) {
    t.equal(hex(bad), 'invalid', JSON.stringify(bad))
  }
})

t.test('AddressTrie', async t => {
  const trie = new AddressTrie()
  for (const e of ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1', '172.16.0.0/12']) trie.add(e)
  const cases: Array<[string, boolean | undefined]> = [
    ['10.200.3.4', true], ['11.0.0.1', false], ['192.168.1.7', true], ['192.168.1.8', false],
    ['::ffff:10.9.9.9', true], ['::ffff:192.168.1.7', true], ['::ffff:11.0.0.1', false],
    ['2001:db8:abcd::1', true], ['2001:db9::1', false], ['::1', true], ['::2', false],
    ['172.31.255.255', true], ['172.32.0.0', false], ['not-an-ip', undefined]
  ]
  for (const [address, expected] of cases) t.equal(trie.has(address), expected, address)
  const all = new AddressTrie()
  all.add('0.0.0.0/0')
  t.equal(all.has('203.0.113.9'), true, '0.0.0.0/0 holds every IPv4 address')
  t.equal(all.has('2001:db8::1'), false, 'but no IPv6 one')
  for (const bad of ['10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0.0/', '10.0.0.0/x']) {
    t.throws(() => new AddressTrie().add(bad), { message: `"${bad}" is not an IPv4 or IPv6 address or CIDR range` })
  }
  for (const zoned of ['fe80::1%eth0', 'fe80::%eth0/64']) {
    t.throws(() => new AddressTrie().add(zoned), { message: `"${zoned}": a zone (%name) is not supported, it would match every interface; remove it` })
  }
})

t.test('bits set past the prefix length, or a prefix length with a leading zero, are refused', async t => {
  const cases: Array<[string, string]> = [
    ['10.0.0.5/8', '10.0.0.0/8, or 10.0.0.5/32'],
    ['1.2.3.4/0', '0.0.0.0/0, or 1.2.3.4/32'],
    ['10.1.2.3/31', '10.1.2.2/31, or 10.1.2.3/32'],
    ['::ffff:1.2.3.4/97', '::ffff:0.0.0.0/97, or ::ffff:1.2.3.4/128'],
    ['2001:db8:0:0:1::/64', '2001:db8::/64, or 2001:db8:0:0:1::/128'],
    ['fe80::1/10', 'fe80::/10, or fe80::1/128']
  ]
  for (const [entry, meant] of cases) {
    t.throws(() => new AddressTrie().add(entry), { message: `"${entry}" has bits set past its prefix length: did you mean ${meant}?` })
  }
  for (const [entry, prefix] of [['10.0.0.0/08', '/8'], ['0.0.0.0/00', '/0'], ['2001:db8::/032', '/32']]) {
    t.throws(() => new AddressTrie().add(entry as string), { message: `"${entry}": write the prefix length without a leading zero (${prefix})` })
  }
  const trie = new AddressTrie()
  for (const ok of ['10.0.0.0/8', '0.0.0.0/0', '::/0', '10.1.2.2/31', '::ffff:10.0.0.0/104', '2001:db8::/32', '192.0.2.1/32', '192.0.2.1']) trie.add(ok)
  t.equal(trie.has('10.9.9.9'), true)
})

t.test('an IPv6 range holds IPv4 addresses only when it lies inside ::ffff:0:0/96', async t => {
  const wide = new AddressTrie()
  wide.add('::/0')
  for (const ip of ['203.0.113.9', '::ffff:203.0.113.9', '0.0.0.0']) t.equal(wide.has(ip), false, `::/0 holds no IPv4 address: ${ip}`)
  for (const ip of ['::1', '2001:db8::1', '::', '::203.0.113.9']) t.equal(wide.has(ip), true, `but every IPv6 one: ${ip}`)
  const under = new AddressTrie()
  under.add('::/80')
  t.equal(under.has('10.0.0.1'), false, '::/80 contains the mapped range, written as IPv6: no IPv4 address')
  t.equal(under.has('::abcd:1'), true)
  const mapped = new AddressTrie()
  mapped.add('::ffff:0:0/96')
  mapped.add('::/0')
  t.equal(mapped.has('10.0.0.1'), true, '::ffff:0:0/96 is every IPv4 address, whatever wider range holds it too')
  t.equal(mapped.has('2001:db8::1'), true)
  const part = new AddressTrie()
  part.add('::ffff:10.0.0.0/104')
  part.add('::/64')
  t.equal(part.has('10.9.9.9'), true)
  t.equal(part.has('::ffff:10.9.9.9'), true)
  t.equal(part.has('11.0.0.1'), false, 'outside the mapped rule, and ::/64 is an IPv6 rule')
})

t.test('an address that leaves the trie is not looked up again from the root with its remaining bits', async t => {
  const trie = new AddressTrie()
  trie.add('::/8')
  // 8000::1 is a 1 and then eight 0 bits: off the trie at its first bit, inside ::/8 from its second.
  t.equal(trie.has('8000::1'), false)
  t.equal(trie.has('00ff::1'), true)
})

t.test('covers: whether one range holds all of another, as has() matches addresses', async t => {
  const trie = new AddressTrie()
  for (const e of ['10.0.0.0/7', '2001:DB8::/32', '::ffff:192.168.0.0/112', '::/0']) trie.add(e)
  const cases: Array<[string, boolean]> = [
    ['10.0.0.0/8', true], ['11.255.0.0/16', true], ['10.6.6.6', true], ['::ffff:10.6.6.6', true], ['::ffff:10.0.0.0/104', true],
    ['12.0.0.0/8', false], ['8.0.0.0/6', false], ['192.168.3.0/24', true], ['192.0.0.0/8', false],
    // ::/0 holds IPv6 ranges only: no IPv4 one, however written.
    ['0.0.0.0/0', false], ['::ffff:0:0/96', false], ['203.0.113.9', false],
    ['2001:db8::/32', true], ['2001:db8:1::/48', true], ['fe80::/10', true], ['::/0', true], ['::/80', true]
  ]
  for (const [range, expected] of cases) t.equal(trie.covers(range), expected, range)
  const v4 = new AddressTrie()
  v4.add('0.0.0.0/0')
  for (const [range, expected] of [['::ffff:0:0/96', true], ['1.2.3.0/24', true], ['::/0', false], ['::/80', false], ['::1', false]] as const) {
    t.equal(v4.covers(range), expected, `0.0.0.0/0 covers ${range}`)
  }
})
