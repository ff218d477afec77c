import t from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { rawRequest } from '../../test/helpers/raw-http.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const CI_KEY = 'ci-bot-key-0123456789abcdef'
const PARTNER_KEY = 'partner-key-from-the-environment'
const INTL_KEY = 'a-key-for-a-consumer-named-in-unicode'
const sha = (s: string) => createHash('sha256').update(s).digest('hex')

const seen: string[] = []
const up = await startUpstream((req, res) => {
  seen.push(req.url as string)
  const body = JSON.stringify({ url: req.url, headers: req.headers })
  res.writeHead(200, { 'content-type': 'application/json' }).end(body)
})
t.teardown(() => up.close())

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())
const STORED_KEY = 'a-key-only-redis-knows-0123'
await redis.cli('SET', `pc:key-auth:${sha(STORED_KEY)}`, 'ci-bot')
await redis.cli('SET', `pc:key-auth:${sha('another-redis-key-456789')}`, 'tenant-42')
await redis.cli('SET', `pc:key-auth:${sha('a-key-with-an-empty-entry-0')}`, '')

// commandTimeout: the default 100 ms answers 503 on a loaded machine (a Stryker run), which is not what this test is about.
const CONFIG = `
stores:
  keys: { type: redis, url: "${redis.url}", commandTimeout: 2s }
consumers:
  - { id: ci-bot, groups: [automation], credentials: { key-auth: { keys: [ "sha256:${sha(CI_KEY)}" ] } } }
  - { id: partner, credentials: { key-auth: { keys: [ "\${PARTNER_KEY}" ] } } }
  - { id: "jürgen 100%", groups: [ 管理者, "ops,admins" ], credentials: { key-auth: { keys: [ "${INTL_KEY}" ] } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, plugins: { key-auth: {} } }
  - { name: keys-query, match: { path: /keys-query }, upstream: up, plugins: { key-auth: { query: apikey, hideCredentials: true } } }
  - { name: admin, match: { path: /admin/* }, upstream: up, plugins: { key-auth: {} } }
  - { name: public, match: { path: /public/* }, upstream: up }
  - { name: team, match: { path: /team }, upstream: up, plugins: { key-auth: { header: X-Team-Key, realm: "team area" } } }
  - { name: keys-store, match: { path: /keys-store }, upstream: up, plugins: { key-auth: { store: keys } } }
`
const gw = await startGateway(CONFIG, { env: { PARTNER_KEY } })
t.teardown(() => gw.close())

async function call (path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) as { url: string, headers: Record<string, string>, error?: string, message?: string, requestId?: string } }
}

t.test('right keys: hashed in config, or in clear from ${ENV}', async t => {
  const ci = await call('/keys', { 'x-api-key': CI_KEY })
  t.equal(ci.status, 200)
  t.equal(ci.json.headers['x-consumer-id'], 'ci-bot')
  t.equal(ci.json.headers['x-consumer-groups'], 'automation')
  t.equal(ci.json.headers['x-api-key'], CI_KEY, 'kept without hideCredentials')
  const partner = await call('/keys', { 'x-api-key': PARTNER_KEY })
  t.equal(partner.json.headers['x-consumer-id'], 'partner')
})

t.test('wrong and missing keys: 401, the key never echoed', async t => {
  const wrong = await call('/keys', { 'x-api-key': 'not-a-key-of-anyone-at-all' })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers['www-authenticate'], 'Key realm="portcullis"')
  t.same({ ...wrong.json, requestId: undefined }, { error: 'invalid_credentials', message: 'the API key is not valid', requestId: undefined })
  t.notOk(wrong.text.includes('not-a-key'))
  const missing = await call('/keys')
  t.equal(missing.status, 401)
  t.equal(missing.json.error, 'unauthorized')
  t.equal((await call('/keys', { 'x-api-key': CI_KEY.slice(0, -1) })).status, 401, 'one character short')
  t.equal((await call(`/keys?apikey=${CI_KEY}`)).status, 401, 'the query is not read unless configured')
})

t.test('a refusal: not cached, counted and logged by reason, its request id in the body; the key in neither', async t => {
  const failures = async (route: string, reason: string) => (await gw.metrics.registry.getSingleMetric('portcullis_auth_failures_total')?.get())
    ?.values.find(v => v.labels.route === route && v.labels.plugin === 'key-auth' && v.labels.reason === reason)?.value ?? 0
  const [wrongBefore, missingBefore] = [await failures('keys', 'invalid_key'), await failures('keys', 'missing')]
  const wrong = await call('/keys', { 'x-api-key': 'a-wrong-key-for-the-log-0' })
  t.equal(wrong.headers['cache-control'], 'no-store')
  t.equal(wrong.headers['retry-after'], undefined)
  t.equal(wrong.json.requestId, wrong.headers['x-request-id'])
  t.match(wrong.json.requestId, /^[\w-]{8,}$/)
  const line = await waitForLog(gw.logs, { requestId: wrong.json.requestId, msg: 'key-auth: the API key is not valid' })
  t.same([line?.level, line?.reason, line?.status], [30, 'invalid_key', 401])
  t.notOk(gw.logs.some(l => JSON.stringify(l).includes('a-wrong-key-for-the-log-0')), 'no log line holds the key')
  const missing = await call('/keys')
  t.same(missing.json, { error: 'unauthorized', message: 'authentication is required', requestId: missing.headers['x-request-id'] })
  t.ok(await waitForLog(gw.logs, { requestId: missing.json.requestId, reason: 'missing', msg: 'key-auth: authentication is required' }))
  t.equal(await failures('keys', 'invalid_key'), wrongBefore + 1)
  t.equal(await failures('keys', 'missing'), missingBefore + 1)
  t.ok((await gw.metrics.registry.metrics()).includes('# HELP portcullis_auth_failures_total Requests refused by an authentication or access control plugin, by reason.\n'), 'the metric explains itself')
})

t.test('header: and realm: options', async t => {
  const ok = await call('/team', { 'x-team-key': CI_KEY })
  t.equal(ok.status, 200)
  t.equal(ok.json.headers['x-consumer-id'], 'ci-bot')
  const wrongHeader = await call('/team', { 'x-api-key': CI_KEY })
  t.equal(wrongHeader.status, 401, 'x-api-key is not read when another header is configured')
  t.equal(wrongHeader.headers['www-authenticate'], 'Key realm="team area"')
})

t.test('hideCredentials keeps query parameters it cannot decode, in order', async t => {
  const r = await call(`/keys-query?a=%zz&apikey=${CI_KEY}&%E0%A4%A=2&b=3`)
  t.equal(r.status, 200)
  t.equal(r.json.url, '/keys-query?a=%zz&%E0%A4%A=2&b=3')
})

t.test('spoofed identity headers are replaced', async t => {
  const r = await call('/keys', { 'x-api-key': PARTNER_KEY, 'x-consumer-id': 'ci-bot', 'x-consumer-groups': 'automation,admins', 'x-anonymous-consumer': 'true' })
  t.equal(r.json.headers['x-consumer-id'], 'partner')
  t.equal(r.json.headers['x-consumer-groups'], undefined, 'partner has no groups: the client\'s value is gone, not kept')
  t.equal(r.json.headers['x-anonymous-consumer'], undefined)
})

t.test('client headers that pass for identity headers elsewhere are removed: x-consumer-*, and _ for -', async t => {
  const r = await call('/keys', {
    'x-api-key': PARTNER_KEY,
    x_consumer_id: 'ci-bot',
    'x_consumer-groups': 'admins',
    'x-consumer-username': 'ci-bot',
    'x-consumer-custom-id': 'a',
    x_anonymous_consumer: 'true',
    'x-consumers': 'kept'
  })
  t.equal(r.status, 200)
  const names = Object.keys(r.json.headers).filter(h => /^x[-_](consumer|anonymous)/.test(h))
  t.same(names.sort(), ['x-consumer-id', 'x-consumers'], 'only the gateway\'s own and a header that merely starts alike')
  t.equal(r.json.headers['x-consumer-id'], 'partner')
})

t.test('identity values any header can carry: percent-encoded when not plain ASCII, a comma in a group too', async t => {
  const r = await call('/keys', { 'x-api-key': INTL_KEY })
  t.equal(r.status, 200, 'not a 502: the consumer\'s id and groups are encoded, not refused by the HTTP client')
  t.equal(r.json.headers['x-consumer-id'], 'j%C3%BCrgen%20100%25')
  t.equal(decodeURIComponent(r.json.headers['x-consumer-id'] as string), 'jürgen 100%')
  t.equal(r.json.headers['x-consumer-groups'], '%E7%AE%A1%E7%90%86%E8%80%85,ops%2Cadmins')
  t.same((r.json.headers['x-consumer-groups'] as string).split(',').map(decodeURIComponent), ['管理者', 'ops,admins'], 'two groups, read back exactly')
  t.equal((await call('/keys', { 'x-api-key': CI_KEY })).json.headers['x-consumer-groups'], 'automation', 'plain values as they are')
})

t.test('hideCredentials leaves a query without the key as sent: no stray ?', async t => {
  t.equal((await call('/keys-query', { 'x-api-key': CI_KEY })).json.url, '/keys-query')
  t.equal((await call('/keys-query?a=1', { 'x-api-key': CI_KEY })).json.url, '/keys-query?a=1')
})

t.test('a credential header of any name is redacted in logged headers', async t => {
  const dir = t.testdir({})
  const logged = await startGateway(`logging: { headers: true }\n${CONFIG}`, { env: { PARTNER_KEY }, file: `${dir}/gateway.yaml` })
  t.teardown(() => logged.close())
  const res = await request(`${logged.url}/team`, { headers: { 'x-team-key': CI_KEY, 'x-other': 'shown' } })
  t.equal(res.statusCode, 200)
  const id = res.headers['x-request-id']
  await res.body.dump()
  const line = await waitForLog(logged.logs, { msg: 'request', requestId: id })
  t.match(line, { reqHeaders: { 'x-team-key': '[redacted]', 'x-other': 'shown' } })
  t.notOk(JSON.stringify(logged.logs).includes(CI_KEY), 'the key is in no line')
})

t.test('key in the query, hidden before forwarding (query and header)', async t => {
  const r = await call(`/keys-query?x=1&apikey=${CI_KEY}`)
  t.equal(r.status, 200)
  t.equal(r.json.url, '/keys-query?x=1')
  const h = await call('/keys-query', { 'x-api-key': CI_KEY })
  t.equal(h.json.headers['x-api-key'], undefined)
})

t.test('path tricks cannot reach the protected upstream without a key', async t => {
  const tricks = ['/public/../admin/x', '/%61dmin/x', '//admin/x', '/admin/./x', '/public/%2e%2e/admin/x', '/admin%2Fx',
    '/public/..%2Fadmin/x', '/admin;x/x', '/public/..;/admin/x', '/public%2F..%2Fadmin/x', '/./admin/x', '/admin/x/..', '/ADMIN/x']
  for (const path of tricks) {
    const before = seen.length
    const res = await rawRequest(Number(new URL(gw.url).port), [`GET ${path} HTTP/1.1`, 'Host: x', 'Connection: close'])
    const reached = seen.slice(before)
    t.ok([400, 401, 404].includes(res.status), `${path}: ${res.status}`)
    t.notOk(reached.some(u => u.toLowerCase().includes('admin')), `${path}: the admin upstream path was not requested`)
  }
})

t.test('the same key for two consumers is a config error at its line', async t => {
  const text = CONFIG.replace('"${PARTNER_KEY}"', `"${CI_KEY}"`)
  await t.rejects(parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${text}`, 'dup.yaml', {}),
    /dup\.yaml:8:\d+ consumers\[1\]\.credentials\.key-auth: the same key-auth credential is given to consumers\[0\] \("ci-bot"\)/)
  await t.rejects(parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${text.replace(`"${CI_KEY}"`, '"short"')}`, 'bad.yaml', {}),
    /keys\[0\]: must be sha256:<64 lower-case hex digits> or a key of at least 16 characters/)
})

t.test('a key with white space at either end (a secret file\'s trailing newline) is a config error at its line', async t => {
  const config = `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${CONFIG}`
  for (const key of [`${PARTNER_KEY}\n`, `${PARTNER_KEY} `, `\t${PARTNER_KEY}`]) {
    await t.rejects(parseConfig(config, 'ws.yaml', { PARTNER_KEY: key }),
      { message: /^invalid configuration \(1 problem\):\nws\.yaml:8:\d+ consumers\[1\]\.credentials\.key-auth\.keys\[0\]: has white space at its start or end \(a trailing newline from a secret file\?\): remove it; a key sent in a header never has any, so this one would never match there \(from the variable PARTNER_KEY\)$/ },
      JSON.stringify(key))
  }
  await t.resolves(parseConfig(config, 'ws.yaml', { PARTNER_KEY: `${PARTNER_KEY.slice(0, 8)} ${PARTNER_KEY.slice(8)}` }), 'white space inside a key is the key\'s own')
})

t.test('a key with a character beyond printable ASCII (read as Latin-1 from a header, it would never match there) is a config error at its line', async t => {
  const config = `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${CONFIG}`
  for (const key of [`${PARTNER_KEY}-é`, `schlüssel-${PARTNER_KEY}`, `${PARTNER_KEY}🔑`, `${PARTNER_KEY.slice(0, 8)}\t${PARTNER_KEY.slice(8)}`, `${PARTNER_KEY}\u007f`]) {
    await t.rejects(parseConfig(config, 'ascii.yaml', { PARTNER_KEY: key }),
      { message: /^invalid configuration \(1 problem\):\nascii\.yaml:8:\d+ consumers\[1\]\.credentials\.key-auth\.keys\[0\]: has a character beyond printable ASCII \(a letter such as é, a control character\): a key sent in a header is read byte by byte as Latin-1, so this one would never match there; use printable ASCII \(space to ~\) \(from the variable PARTNER_KEY\)$/ },
      JSON.stringify(key))
  }
  await t.resolves(parseConfig(config, 'ascii.yaml', { PARTNER_KEY: '!"#$%&\'()*+,-./0123456789:;<=> ?@AZ[\\]^_`az{|}~' }), 'every printable ASCII character')
})

t.test('keys in a Redis store: looked up when not in the config; Redis down is 503, not 401, warned at most every 10 s', async t => {
  const known = await call('/keys-store', { 'x-api-key': STORED_KEY })
  t.equal(known.status, 200)
  t.equal(known.json.headers['x-consumer-id'], 'ci-bot')
  t.equal(known.json.headers['x-consumer-groups'], 'automation', 'a consumer under consumers: gets its groups')
  const other = await call('/keys-store', { 'x-api-key': 'another-redis-key-456789' })
  t.equal(other.json.headers['x-consumer-id'], 'tenant-42', 'an id not under consumers: is a consumer of its own')
  t.equal(other.json.headers['x-consumer-groups'], undefined, 'with no groups')
  const empty = await call('/keys-store', { 'x-api-key': 'a-key-with-an-empty-entry-0' })
  t.equal(empty.status, 401, 'an empty entry names no consumer')
  t.equal(empty.json.error, 'invalid_credentials')
  t.equal((await call('/keys-store', { 'x-api-key': PARTNER_KEY })).json.headers['x-consumer-id'], 'partner', 'config keys first')
  t.equal((await call('/keys-store', { 'x-api-key': 'nobody-has-this-key-000' })).status, 401)
  await redis.kill()
  const down = await call('/keys-store', { 'x-api-key': STORED_KEY })
  t.equal(down.status, 503)
  t.equal(down.json.error, 'auth_unavailable')
  t.equal(down.json.message, 'API keys cannot be checked right now; try again later')
  t.ok(await waitForLog(gw.logs, { requestId: down.json.requestId, reason: 'store_error', status: 503 }), 'logged as store_error')
  t.equal(down.headers['www-authenticate'], undefined, 'no challenge: the key may be right')
  t.equal(down.headers['retry-after'], '5')
  t.equal(down.headers['cache-control'], 'no-store')
  const warning = 'key-auth: store "keys" failed; keys not in the config are answered 503 while it does (logged at most every 10s)'
  t.match(await waitForLog(gw.logs, { level: 40, msg: warning }), { store: 'keys', error: /\S/, failures: 1 }, 'a warning names the store')
  const more = await Promise.all(Array.from({ length: 20 }, () => call('/keys-store', { 'x-api-key': STORED_KEY })))
  t.same(new Set(more.map(r => r.status)), new Set([503]))
  t.ok(await waitForLog(gw.logs, { reason: 'store_error', requestId: more[19]?.json.requestId }), 'each refusal still logged as the request\'s')
  t.equal(gw.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith('key-auth: store')).length, 1, 'no warning per failed lookup: at most one every 10 s')
  t.equal((await call('/keys-store', { 'x-api-key': PARTNER_KEY })).status, 200, 'config keys still work')
})
