import t, { type Test } from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { startUpstream } from '../helpers/upstream.ts'

// server.removeRequestHeaders and request-headers' names had their `_` spellings (2^dashes) listed
// at load, and request-headers looked each up per request: a name of 20 dashes took seconds and
// hundreds of MB. Now compared with `_` as `-`, for the names with `_` a request holds. Counted, not
// timed: the entries the gateway's sets take while it loads.

/** 23 parts, 22 dashes: 4,194,304 spellings. */
const LONG = Array.from({ length: 23 }, (_, i) => `p${i}`).join('-')
/** Some of its dashes as `_`, upper case: one of the spellings. */
const MIXED = LONG.replaceAll('-', (_, at: number) => at % 3 === 0 ? '_' : '-').toUpperCase()

/** A gateway with `rest` (after `server:`), and how many entries sets took while it started. */
async function counted (t: Test, rest: string): Promise<{ gw: TestGateway, adds: number, send: (...fields: string[]) => Promise<Record<string, string>> }> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const add = Set.prototype.add
  let adds = 0
  Set.prototype.add = function (this: Set<unknown>, value: unknown) { adds++; return add.call(this, value) }
  let gw: TestGateway
  try {
    gw = await startGateway(rest.replace('UP', up.url))
  } finally {
    Set.prototype.add = add
  }
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const send = async (...fields: string[]) => {
    const res = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: a', 'Connection: close', ...fields])
    t.equal(res.status, 200)
    return (JSON.parse(res.body) as { headers: Record<string, string> }).headers
  }
  return { gw, adds, send }
}

// Far below the 4 million spellings of one such name, far above what a load takes (some thousands).
const BOUND = 200_000

t.test('server.removeRequestHeaders: a name of 22 dashes loads without its spellings listed; they are removed, other _ names kept', async t => {
  const { adds, send } = await counted(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
  removeRequestHeaders: [ ${LONG.toUpperCase()} ]
upstreams:
  up: { targets: [ { url: "UP" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.ok(adds < BOUND, `${adds} set entries`)
  const seen = await send(`${LONG}: 1`, `${MIXED}: 2`, `${LONG.replaceAll('-', '_')}: 3`, `${LONG}-more_x: 4`, 'X_Other_Name: kept', 'X_Real_IP: 6.6.6.6')
  t.same(Object.keys(seen).filter(h => h.startsWith('p0')), [`${LONG}-more_x`], 'every spelling removed, a longer name kept')
  t.equal(seen.x_other_name, 'kept')
  t.equal(seen.x_real_ip, undefined, 'a forwarding header\'s spelling still removed')
})

t.test('request-headers: remove, set and rename names of 22 dashes load without their spellings listed', async t => {
  const { adds, send } = await counted(t, `upstreams:
  up: { targets: [ { url: "UP" } ] }
routes:
  - name: all
    match: { path: /* }
    upstream: up
    plugins:
      request-headers: { remove: [ ${LONG} ], set: { ${LONG}-set: fixed }, rename: { x_from: ${LONG}-to } }
`)
  t.ok(adds < BOUND, `${adds} set entries`)
  const seen = await send(`${MIXED}: 1`, `${MIXED}_SET: evil`, `${MIXED}_TO: evil`, 'X_From: renamed', 'X_Kept: kept')
  t.same(Object.keys(seen).filter(h => h.startsWith('p0')).sort(), [`${LONG}-set`, `${LONG}-to`])
  t.equal(seen[`${LONG}-set`], 'fixed')
  t.equal(seen[`${LONG}-to`], 'renamed', 'the spelling renamed from is taken, not removed')
  t.equal(seen.x_kept, 'kept')
})
