import t from 'tap'
import { addressKey } from './address-key.ts'

// IPv4 clients behind a translator each keep their own key (the IPv4 address), as they would connecting over IPv4.
t.test('an IPv4 address embedded by NAT64 (64:ff9b::/96) or SIIT (::ffff:0:0:0/96) is the IPv4 address', async t => {
  t.equal(addressKey('64:ff9b::10.0.0.1', 64), '10.0.0.1')
  t.equal(addressKey('64:ff9b::a00:2', 64), '10.0.0.2', 'in hex')
  t.equal(addressKey('64:FF9B:0:0:0:0:C000:0201', 128), '192.0.2.1', 'any spelling, any ipv6Prefix')
  t.equal(addressKey('::ffff:0:10.0.0.3', 64), '10.0.0.3', 'SIIT: IPv4-translated')
  t.equal(addressKey('::ffff:0:a00:4', 48), '10.0.0.4')
  t.equal(addressKey('::ffff:10.0.0.5', 64), '10.0.0.5', 'IPv4-mapped, as before')
})

t.test('addresses near those prefixes stay IPv6, counted by their network', async t => {
  t.equal(addressKey('64:ff9b:0:0:1::a00:1', 64), '64:ff9b::/64', 'outside 64:ff9b::/96')
  t.equal(addressKey('::fffe:0:a00:1', 64), '::/64', 'outside ::ffff:0:0:0/96')
  t.equal(addressKey('::a00:1', 64), '::/64', 'IPv4-compatible (deprecated): not a client\'s IPv4 address')
})

t.test('the local-use prefix 64:ff9b:1::/48: by the whole address, whatever the network\'s prefix length', async t => {
  t.equal(addressKey('64:ff9b:1:abcd::10.0.0.1', 64), '64:ff9b:1:abcd::a00:1', 'a /96 in it: one key per IPv4 client')
  t.equal(addressKey('64:ff9b:1:a00:1::', 64), '64:ff9b:1:a00:1::', 'a /48 (IPv4 in bits 48-87): one key per IPv4 client too')
  t.not(addressKey('64:ff9b:1:abcd::a00:1', 64), addressKey('64:ff9b:1:abcd::a00:2', 64))
})
