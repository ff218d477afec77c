import t from 'tap'
import { SignJWT } from 'jose'
import { Agent, request } from 'undici'
import { startUpstream } from '../../../test/helpers/upstream.ts'
import { echoed, h2Request, startH2Gateway } from '../../../test/helpers/http2.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

/**
 * A credential query parameter sent twice, or empty, is refused as malformed: the gateway cannot
 * know which one the upstream reads (PHP's $_GET takes the last), nor how it splits the rest. A
 * cookie sent twice, as browsers do (RFC 6265 5.4), is its first pair, the others removed before
 * the upstream (Django takes the last). Names match as PHP mangles them too (`api.key`: `api_key`).
 * hideCredentials removes cookies as it does query parameters.
 */
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const KEY = 'alice-key-0123456789abcdef'

const up = await startUpstream()
t.teardown(() => up.close())
const from = '[ { cookie: session }, { query: token } ]'
const route = (name: string, plugins: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: ${plugins} }`
const { gw, ca, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `consumers:
  - { id: alice, credentials: { key-auth: { keys: [ ${KEY} ] } } }
  - { id: guest }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('optional', `{ jwt-auth: { secret: "${SECRET}", optional: true, hideCredentials: true, from: ${from} } }`)}
${route('optional-shown', `{ jwt-auth: { secret: "${SECRET}", optional: true, from: ${from} } }`)}
${route('required', `{ jwt-auth: { secret: "${SECRET}", from: ${from} } }`)}
${route('key-anonymous', '{ key-auth: { query: api_key, anonymous: guest, hideCredentials: true } }')}
${route('key-required', '{ key-auth: { query: api_key } }')}
${route('php-cookie', `{ jwt-auth: { secret: "${SECRET}", optional: true, from: [ { cookie: access_token } ] } }`)}
`)
const agent = new Agent({ connect: { ca: ca.cert } })
t.teardown(() => agent.close())

const sign = (secret: string) => new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(secret))
const GOOD = await sign(SECRET)
const FORGED = await sign('another-secret-of-at-least-32-characters!')
const STALE = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(Buffer.from(SECRET))

interface Answer {
  status: number
  /** The gateway's refusal. */
  error?: string
  message?: string
  /** What the echo upstream got. */
  url?: string
  headers?: Record<string, string | undefined>
  /** The auth log line's reason, for a refusal. */
  reason?: unknown
}

/** One HTTP/1.1 request; `headers` as undici's flat list, so a Cookie header can be sent twice. */
async function call (path: string, headers: string[] = []): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, { headers, dispatcher: agent })
  const answer = { status: res.statusCode, ...(await res.body.json() as Omit<Answer, 'status'> & { requestId?: string }) }
  const line = answer.requestId === undefined ? undefined : gw.logs.find(l => l.requestId === answer.requestId && 'reason' in l)
  return { ...answer, reason: line?.reason }
}

t.test('optional route: a query parameter sent twice, or empty, or a cookie whose first pair is empty, is refused as malformed, never passed on unverified', async t => {
  for (const [path, headers] of [
    ['/optional', ['cookie', `session=; session=${FORGED}`]],
    ['/optional', ['cookie', 'session=', 'cookie', `session=${FORGED}`]],
    ['/optional', ['cookie', 'a=1; session=']],
    // A copy behind `,`, which some upstreams split cookies on (Rack 2): alone, or beside a good one.
    ['/optional', ['cookie', `a=1, session=${FORGED}`]],
    ['/optional', ['cookie', `a=1, session=${FORGED}; session=${GOOD}`]],
    [`/optional-shown?token=&token=${FORGED}`, []],
    [`/optional-shown?token=${FORGED}&token=`, []],
    ['/optional-shown?a=1&token=', []],
    [`/optional?token=${GOOD}&tok%65n=${GOOD}`, []]
  ] as const) {
    const r = await call(path, [...headers])
    t.same([r.status, r.error, r.message, r.reason], [401, 'invalid_token', 'the token is malformed', 'malformed'], `${path} ${headers.join(': ')}`)
    t.equal(r.url, undefined, 'not forwarded')
  }
})

t.test('required route: a good value beside a forged one is refused, not admitted for the good one', async t => {
  for (const [path, headers] of [
    [`/required?token=${GOOD}&token=${FORGED}`, []],
    // A second copy behind `;`, which some upstreams split on (Rack 2, Perl's CGI), or one only there.
    [`/required?token=${GOOD}&x=1;token=${FORGED}`, []],
    [`/required?x=1;token=${FORGED}`, []],
    [`/required?token=${GOOD};x=1`, []]
  ] as const) {
    const r = await call(path, [...headers])
    t.same([r.status, r.reason], [401, 'malformed'], `${path} ${headers.join(': ')}`)
  }
  const one = await call('/required', ['cookie', `a=1; session=${GOOD}`])
  t.same([one.status, one.headers?.['x-consumer-id'], one.headers?.cookie], [200, 'bob', `a=1; session=${GOOD}`], 'once: verified; without hideCredentials kept')
  const query = await call(`/required?token=${GOOD}`)
  t.same([query.status, query.headers?.['x-consumer-id']], [200, 'bob'])
  const semicolons = await call(`/required?a=1;b=2&token=${GOOD}`)
  t.same([semicolons.status, semicolons.headers?.['x-consumer-id']], [200, 'bob'], '`;` elsewhere in the query: read the same both ways')
})

t.test('hideCredentials removes the cookie from the Cookie header; the others stay; no header when none is left', async t => {
  const kept = await call('/optional', ['cookie', `a=1; session=${GOOD};b="2"`])
  t.same([kept.status, kept.headers?.['x-consumer-id'], kept.headers?.cookie], [200, 'bob', 'a=1; b="2"'])
  const alone = await call('/optional', ['cookie', `session=${GOOD}`])
  t.equal(alone.headers?.['x-consumer-id'], 'bob')
  t.notOk('cookie' in (alone.headers ?? {}), 'no Cookie header')
  const lines = await call('/optional', ['cookie', 'a=1', 'cookie', `session=${GOOD}`, 'cookie', 'b=2'])
  t.same([lines.headers?.['x-consumer-id'], lines.headers?.cookie], ['bob', 'a=1; b=2'], 'over several Cookie lines')
  const none = await call('/optional', ['cookie', 'a=1; sessions=x'])
  t.same([none.status, none.headers?.['x-consumer-id'], none.headers?.cookie], [200, undefined, 'a=1; sessions=x'], 'without a token: passes, its cookies as sent')
})

t.test('HTTP/2: cookies in several fields are read and hidden as one header', async t => {
  const session = await connect({ h2c: true })
  const hidden = await h2Request(session, { ':path': '/optional', cookie: ['a=1', `session=${GOOD}`, 'b=2'] })
  t.equal(hidden.status, 200)
  t.same([echoed(hidden).headers['x-consumer-id'], echoed(hidden).headers.cookie], ['bob', 'a=1; b=2'])
  const twice = await h2Request(session, { ':path': '/required', cookie: ['a=1', `session=${GOOD}`, `session=${STALE}`, 'b=2'] })
  t.equal(twice.status, 200)
  t.same([echoed(twice).headers['x-consumer-id'], echoed(twice).headers.cookie], ['bob', `a=1; session=${GOOD}; b=2`], 'twice: the first, the other removed')
  const stale = await h2Request(session, { ':path': '/required', cookie: [`session=${STALE}`, 'a=1', `session=${GOOD}`] })
  t.equal(stale.status, 401)
  t.equal((JSON.parse(stale.body.toString()) as { error: string }).error, 'invalid_token')
})

t.test('a cookie sent twice (a browser holding one per path or domain) is its first pair; the others never reach the upstream', async t => {
  for (const [path, headers] of [
    ['/required', ['cookie', `a=1; session=${GOOD}; b=2; session=${STALE}`]],
    ['/optional-shown', ['cookie', `a=1; session=${GOOD}`, 'cookie', `b=2; session=${STALE}`]],
    ['/required', ['cookie', `a=1; session=${GOOD}; b=2; session=${GOOD}; sess%69on=${FORGED}; session`]]
  ] as const) {
    const r = await call(path, [...headers])
    t.same([r.status, r.headers?.['x-consumer-id'], r.headers?.cookie], [200, 'bob', `a=1; session=${GOOD}; b=2`], `${path} ${headers.join(': ')}`)
  }
  const hidden = await call('/optional', ['cookie', `a=1; session=${GOOD}; session=${STALE}; b=2`])
  t.same([hidden.status, hidden.headers?.['x-consumer-id'], hidden.headers?.cookie], [200, 'bob', 'a=1; b=2'], 'hideCredentials: none left')
  for (const path of ['/required', '/optional-shown', '/optional']) {
    const r = await call(path, ['cookie', `session=${STALE}; session=${GOOD}`])
    t.same([r.status, r.reason, r.url], [401, 'expired', undefined], `${path}: the first decides, not a later good one`)
  }
  const encoded = await call('/required', ['cookie', `sess%69on=${FORGED}; session=${GOOD}`])
  t.same([encoded.status, encoded.reason], [401, 'bad_signature'], 'an encoded name is a copy too')
})

t.test('names PHP reads as the credential\'s (`.`, space, `[` as `_`) are copies of it', async t => {
  const forged = 'forged-key-0123456789'
  for (const path of [`/key-required?api_key=${KEY}&api.key=${forged}`, `/key-required?api_key=${KEY}&api+key=${forged}`,
    `/key-required?api_key=${KEY}&api[key=${forged}`, `/key-anonymous?api_key=${KEY}&api%2Ekey=${forged}`, `/key-anonymous?api.key=${KEY}&api_key=${forged}`]) {
    const r = await call(path)
    t.same([r.status, r.reason, r.url], [401, 'malformed', undefined], path)
  }
  // Alone, it is the key (PHP's $_GET['api_key']): verified, and removed with hideCredentials.
  const alone = await call(`/key-anonymous?a=1&api.key=${KEY}`)
  t.same([alone.status, alone.headers?.['x-consumer-id'], alone.url], [200, 'alice', '/key-anonymous?a=1'])
  const unknown = await call(`/key-anonymous?api[key=${forged}`)
  t.same([unknown.status, unknown.url], [401, undefined], 'not passed on as anonymous')
  const cookies = await call('/php-cookie', ['cookie', `access_token=${GOOD}; access.token=${FORGED}; a=1; access+token=${FORGED}; access[token=x`])
  t.same([cookies.status, cookies.headers?.['x-consumer-id'], cookies.headers?.cookie], [200, 'bob', `access_token=${GOOD}; a=1`], 'cookies: removed without hideCredentials')
  const first = await call('/php-cookie', ['cookie', `access.token=${FORGED}; access_token=${GOOD}`])
  t.same([first.status, first.reason, first.url], [401, 'bad_signature', undefined], 'PHP keeps the first: so does the gateway')
})

t.test('key-auth: a query key sent twice or empty is refused, on anonymous routes too; an empty header is still no key', async t => {
  for (const path of [`/key-anonymous?api_key=&api_key=${KEY}`, `/key-anonymous?api_key=${KEY}&api_key=${KEY}`, '/key-anonymous?api_key=',
    `/key-required?api_key=${KEY}&api_key=forged-key-0123456789`, `/key-required?api_key=${KEY}&x=1;api_key=forged-key-0123456789`]) {
    const r = await call(path)
    t.same([r.status, r.error, r.reason], [401, 'invalid_credentials', 'malformed'], path)
  }
  const once = await call(`/key-anonymous?a=1&api_key=${KEY}`)
  t.same([once.status, once.headers?.['x-consumer-id'], once.url], [200, 'alice', '/key-anonymous?a=1'])
  for (const [path, headers] of [['/key-anonymous?a=1', []], ['/key-anonymous', ['x-api-key', '']]] as const) {
    const anonymous = await call(path, [...headers])
    t.same([anonymous.status, anonymous.headers?.['x-consumer-id'], anonymous.headers?.['x-anonymous-consumer']], [200, 'guest', 'true'], `${path} ${headers.join(': ')}`)
  }
})
