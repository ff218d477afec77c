import t from 'tap'
import { request } from 'undici'
import { memoryLogger, startGateway } from '../../test/helpers/gateway.ts'
import { deadPort, startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { StoreErrorLog } from './store-errors.ts'

// Made once with `printf 'hunter2-secret' | portcullis hash-password`.
const ALICE_HASH = '$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg'

// Store failures logged at most once per 10 s, at chosen instants (ms), with the count since the last line.

t.test('the first failure is logged at once; the next within 10 s only counted; the line after says how many', async t => {
  const { log, lines } = memoryLogger()
  const errors = new StoreErrorLog(log, { store: 'shared', onStoreError: 'allow' }, 'rate-limit: store "shared" failed; requests are allowed unlimited while it does')
  errors.report(new Error('Connection is closed.'), 5_000)
  t.equal(lines.length, 1)
  t.match(lines[0], {
    level: 40,
    store: 'shared',
    error: 'Connection is closed.',
    failures: 1,
    onStoreError: 'allow',
    msg: 'rate-limit: store "shared" failed; requests are allowed unlimited while it does (logged at most every 10s)'
  })
  errors.report(new Error('a'), 5_001)
  errors.report(new Error('b'), 14_999.5)
  t.equal(lines.length, 1, 'not within 10 s of the last line')
  errors.report(new Error('Command timed out'), 15_000)
  t.equal(lines.length, 2, 'logged again 10 s after the last line')
  t.match(lines[1], { error: 'Command timed out', failures: 3 })
  errors.report(new Error('c'), 24_999)
  t.equal(lines.length, 2, 'the window counts from the last line, not the first')
  errors.report(new Error('d'), 25_000)
  t.match(lines[2], { error: 'd', failures: 2 })
})

t.test('each log counts its own failures, with its own fields and message', async t => {
  const { log, lines } = memoryLogger()
  const one = new StoreErrorLog(log, { store: 'one' }, 'key-auth: store "one" failed')
  const other = new StoreErrorLog(log, { store: 'other', onStoreError: 'deny' }, 'rate-limit: store "other" failed')
  one.report(new Error('x'), 0)
  other.report(new Error('y'), 1)
  one.report(new Error('z'), 2)
  t.equal(lines.length, 2)
  t.match(lines[0], { store: 'one', error: 'x', failures: 1, msg: 'key-auth: store "one" failed (logged at most every 10s)' })
  t.notOk('onStoreError' in (lines[0] as object), 'only the fields given')
  t.match(lines[1], { store: 'other', error: 'y', failures: 1, onStoreError: 'deny', msg: 'rate-limit: store "other" failed (logged at most every 10s)' })
})

t.test('failures counted after a line are logged when the interval ends, though none follows (the store recovered)', async t => {
  const { log, lines } = memoryLogger()
  const errors = new StoreErrorLog(log, { store: 's' }, 'rate-limit: store "s" failed', 50)
  errors.report(new Error('a'))
  errors.report(new Error('b'))
  errors.report(new Error('c'))
  t.equal(lines.length, 1)
  t.ok(await until(() => lines.length === 2, 10_000), 'a closing line')
  t.match(lines[1], { store: 's', error: 'c', failures: 2, msg: 'rate-limit: store "s" failed (logged at most every 0.05s)' })
  t.notOk(await until(() => lines.length > 2, 200), 'nothing more to say')
})

t.test('dispose logs the failures not logged yet, and only those', async t => {
  const { log, lines } = memoryLogger()
  const errors = new StoreErrorLog(log, { store: 's' }, 'key-auth: store "s" failed')
  errors.dispose()
  t.equal(lines.length, 0, 'nothing failed')
  errors.report(new Error('a'), 0)
  errors.dispose()
  t.equal(lines.length, 1, 'logged already')
  errors.report(new Error('b'), 1)
  errors.report(new Error('c'), 2)
  errors.dispose()
  t.equal(lines.length, 2)
  t.match(lines[1], { error: 'c', failures: 2 })
})

t.test('through a gateway: one log per plugin and store for all the routes, and at a stop the failures not logged yet', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const ROUTES = 10
  const route = (i: number) => `  - name: rl${i}
    match: { path: /rl${i} }
    upstream: up
    plugins: { rate-limit: { store: down, limits: [ { name: n, requests: 100, window: 1h } ] } }
  - name: key${i}
    match: { path: /key${i} }
    upstream: up
    plugins: { key-auth: { store: down } }
  - name: basic${i}
    match: { path: /basic${i} }
    upstream: up
    plugins: { basic-auth: { failures: { store: down, window: ${i + 1}m } } }
`
  const gw = await startGateway(`stores:
  down: { type: redis, url: "redis://127.0.0.1:${await deadPort()}", commandTimeout: 1s }
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${Array.from({ length: ROUTES }, (_, i) => route(i)).join('')}`)
  const started = performance.now()
  const statuses: number[] = []
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < ROUTES; i++) {
      for (const [path, headers] of [[`/rl${i}`, {}], [`/key${i}`, { 'x-api-key': 'not-in-the-config' }], [`/basic${i}`, { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` }]] as const) {
        const res = await request(`${gw.url}${path}`, { headers })
        await res.body.dump()
        statuses.push(res.statusCode)
      }
    }
  }
  const seconds = (performance.now() - started) / 1000
  t.same(new Set(statuses), new Set([200, 503, 401]), 'allowed unlimited, key-auth 503, passwords checked without a limit')
  const linesOf = (plugin: string) => gw.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith(`${plugin}: store "down" failed`))
  // One line per 10 s at most, whatever the number of routes (one each before).
  const most = 1 + Math.floor(seconds / 10)
  for (const plugin of ['rate-limit', 'key-auth', 'basic-auth']) t.ok(linesOf(plugin).length <= most, `${plugin}: ${linesOf(plugin).length} lines in ${seconds.toFixed(1)} s`)
  await gw.close()
  for (const plugin of ['rate-limit', 'key-auth', 'basic-auth']) {
    const lines = linesOf(plugin)
    t.ok(lines.length <= most + 1, `${plugin}: the stop adds one line at most`)
    t.equal(lines.reduce((n, l) => n + (l.failures as number), 0), 2 * ROUTES, `${plugin}: every failure counted in a line`)
  }
})
