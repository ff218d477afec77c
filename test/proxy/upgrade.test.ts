import t from 'tap'
import { switchesToOffered, upgradeRefusal } from '../../src/proxy/upgrade.ts'

const WEBSOCKET_ONLY = new Set(['websocket'])
const NONE = new Set<string>()
const WITH_FOO = new Set(['websocket', 'foo', 'bar/2', 'h2cx'])
// The schema never lets h2c into a route's list; were it there, it is refused all the same.
const WITH_H2C = new Set(['websocket', 'h2c', 'h2c/1'])

/** Route's protocols, the client's Upgrade header, the error code (undefined: tunnelled). */
const TABLE: ReadonlyArray<readonly [ReadonlySet<string>, string | undefined, string | undefined]> = [
  [WEBSOCKET_ONLY, 'websocket', undefined],
  [WEBSOCKET_ONLY, 'WebSocket', undefined],
  [WEBSOCKET_ONLY, ' websocket ', undefined],
  [NONE, 'websocket', 'websocket_disabled'],
  [NONE, 'WEBSOCKET', 'websocket_disabled'],
  [WEBSOCKET_ONLY, 'foo', 'upgrade_refused'],
  // Every protocol offered must be allowed: the upstream may pick any.
  [WEBSOCKET_ONLY, 'websocket, foo', 'upgrade_refused'],
  [WITH_FOO, 'websocket, foo', undefined],
  [WITH_FOO, 'Foo,WebSocket', undefined],
  [WITH_FOO, 'bar/2', undefined],
  [WITH_FOO, 'bar', 'upgrade_refused'],
  [WITH_FOO, 'h2cx', undefined],
  [new Set(['foo']), 'foo, websocket', 'websocket_disabled'],
  [new Set(['foo']), 'foo, baz', 'upgrade_refused'],
  [WITH_FOO, 'foo,,websocket', 'upgrade_refused'],
  [WITH_FOO, 'foo,', 'upgrade_refused'],
  [WITH_FOO, '', 'upgrade_refused'],
  [WITH_FOO, undefined, 'upgrade_refused'],
  [WITH_H2C, 'h2c', 'upgrade_refused'],
  [WITH_H2C, 'H2C', 'upgrade_refused'],
  [WITH_H2C, 'h2c/1', 'upgrade_refused'],
  [WITH_H2C, 'websocket, h2c', 'upgrade_refused']
]

t.test('upgradeRefusal: each protocol offered must be one of the route\'s, h2c never', async t => {
  for (const [allowed, upgrade, want] of TABLE) {
    t.equal(upgradeRefusal(allowed, upgrade)?.code, want, `[${[...allowed].join(', ')}] ${JSON.stringify(upgrade)}`)
  }
})

/** The client's Upgrade, the 101's Upgrade fields (none: no field), whether the switch is to a protocol offered. */
const SWITCHES: ReadonlyArray<readonly [string, readonly string[], boolean]> = [
  ['websocket', ['websocket'], true],
  ['websocket', ['WebSocket'], true],
  ['WebSocket', [' websocket '], true],
  ['websocket, foo', ['foo'], true],
  ['websocket,foo', ['websocket, foo'], true],
  ['foo/1', ['foo/1'], true],
  ['foo', ['foo/2'], false],
  ['websocket', ['h2c'], false],
  ['foo', ['foo, bar'], false],
  ['foo', ['foo', 'bar'], false],
  ['foo', [''], false],
  ['foo', [], false]
]

t.test('switchesToOffered: a 101 switches only to protocols the client offered (RFC 9110 7.8)', async t => {
  for (const [offered, fields, want] of SWITCHES) {
    const raw = [Buffer.from('Connection'), Buffer.from('upgrade'), ...fields.flatMap(f => [Buffer.from('Upgrade'), Buffer.from(f)])]
    t.equal(switchesToOffered(raw, offered), want, `${JSON.stringify(offered)} -> ${JSON.stringify(fields)}`)
  }
})
