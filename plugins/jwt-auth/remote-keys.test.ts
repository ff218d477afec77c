import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { jwtVerify, type JWK } from 'jose'
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import type { PluginMetrics } from '../../src/index.ts'
import { createTestCa } from '../../test/helpers/certs.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { mint, signingKey, type SigningKey } from '../../test/helpers/identity-provider.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { holdKeys, MISSING_KID_WARNING, type HeldKeys } from './held-keys.ts'
import { RemoteKeys, type RemoteKeyOptions } from './remote-keys.ts'

// A remote key set alone, against a local server whose answers each test sets: what is fetched
// when, what a failure keeps, and when the background refresh is scheduled. The timers
// remote-keys.ts and held-keys.ts set are recorded, not run: a test reads their delays, and fires one itself.
// The clock it reads is moved on by a test (aSecondOn) rather than waited for.

/** `basic`: the Basic credentials (base64) the path asks for: 401 without them; `held`: answered once it settles. */
interface Path { status: number, headers: Record<string, string>, body: string, hits: number, hang?: boolean, basic?: string, held?: Promise<void> }
const paths = new Map<string, Path>()
const accepts: Array<string | undefined> = []
const server = await startUpstream((req, res) => {
  const p = paths.get(req.url ?? '')
  if (p === undefined) { res.writeHead(404).end(); return }
  p.hits++
  accepts.push(req.headers.accept)
  if (p.hang === true) return
  if (p.basic !== undefined && req.headers.authorization !== `Basic ${p.basic}`) { res.writeHead(401).end(); return }
  const answer = () => { res.writeHead(p.status, { 'content-type': 'application/json', ...p.headers }).end(p.body) }
  if (p.held === undefined) answer()
  else void p.held.then(answer)
})
t.teardown(() => server.close())
/** Serves `body` at `path` (a key set's JSON, unless a string); returns its state, to change. */
function serve (path: string, body: unknown, headers: Record<string, string> = {}, status = 200): Path {
  const p = { status, headers, body: typeof body === 'string' ? body : JSON.stringify(body), hits: 0 }
  paths.set(path, p)
  return p
}
const set = (...keys: Array<SigningKey | JWK>) => ({ keys: keys.map(k => 'jwk' in k ? k.jwk : k) })

/** The files whose timers and clock the tests hold: a key set and its source's fetching. */
const KEY_FILES = /(remote|held)-keys\.ts/
const delays: number[] = []
const refreshes: Array<() => void> = []
const realSetTimeout = globalThis.setTimeout
globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  // Others' timers as they were asked for, arguments included (undici's parser timeout takes one).
  if (new Error().stack?.match(KEY_FILES) == null) return realSetTimeout(fn, ms, ...args)
  delays.push(ms ?? 0)
  refreshes.push(fn)
  return realSetTimeout(() => {}, 2 ** 31 - 1)
}) as typeof setTimeout
t.teardown(() => { globalThis.setTimeout = realSetTimeout })

let skew = 0
const realNow = performance.now.bind(performance)
performance.now = () => realNow() + (new Error().stack?.split('\n')[2]?.match(KEY_FILES) != null ? skew : 0)
t.teardown(() => { performance.now = realNow })
/** Moves remote-keys.ts's clock a second on: past the least time between two fetches, whatever the cooldown. */
const aSecondOn = () => { skew += 1_000 }

const made: RemoteKeys[] = []
t.teardown(() => { for (const k of made) k.dispose() })
/** A started key set; `fetches` lists each fetch's trigger and result, `lines` the log. */
function remote (source: RemoteKeyOptions['source'], o: Partial<RemoteKeyOptions> = {}, held?: HeldKeys) {
  const fetches: string[] = []
  const metrics = { counter: () => ({ labels: (trigger: string, result: string) => ({ inc: () => { fetches.push(`${trigger} ${result}`) } }) }) } as unknown as PluginMetrics
  const { log, lines } = memoryLogger()
  const keys = new RemoteKeys({ source, timeoutMs: 5_000, cooldownMs: 0, refreshMs: 600_000, maxRefreshMs: 86_400_000, ...o }, log, metrics, held)
  made.push(keys)
  return { keys, fetches, lines }
}
/** The token's sub, verified with the key set, or the error's code. */
async function check (keys: RemoteKeys, token: string): Promise<string> {
  try {
    return `sub ${(await jwtVerify(token, keys.key)).payload.sub}`
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}
const [a, b, c] = await Promise.all([signingKey('RS256', 'a'), signingKey('RS256', 'b'), signingKey('ES256', 'c')])

t.test('refreshed at 90% of max-age, no sooner than the cooldown, no later than maxRefresh; refresh without max-age', async t => {
  const cases: Array<[string | undefined, Partial<RemoteKeyOptions>, number]> = [
    ['max-age=100', { cooldownMs: 30_000 }, 90_000],
    ['public, MAX-AGE=100', {}, 90_000],
    ['private,max-age=100', {}, 90_000],
    ['must-revalidate max-age=20', {}, 18_000],
    [undefined, { refreshMs: 123_000 }, 123_000],
    ['s-maxage=100', { refreshMs: 123_000 }, 123_000],
    ['x-max-age=100', { refreshMs: 123_000 }, 123_000],
    ['max-age=10', { cooldownMs: 30_000 }, 30_000],
    ['max-age=1000000', { maxRefreshMs: 86_400_000 }, 86_400_000],
    ['max-age=100', { cooldownMs: 200_000, maxRefreshMs: 150_000 }, 150_000],
    ['no-cache', { cooldownMs: 7_000 }, 7_000],
    ['max-age=100, no-store', { cooldownMs: 7_000 }, 7_000],
    ['No-Store', { cooldownMs: 7_000 }, 7_000],
    // A cooldown of 0 (tests, a provider on localhost) still leaves a second between background refreshes.
    ['no-cache', { cooldownMs: 0 }, 1_000],
    ['max-age=0', { cooldownMs: 0 }, 1_000],
    // Past 2^31-1 ms (24.8 days) a Node timer fires at once: the refresh would poll in a loop.
    ['max-age=3000000', { maxRefreshMs: 40 * 86_400_000 }, 2 ** 31 - 1],
    [undefined, { refreshMs: 30 * 86_400_000, maxRefreshMs: 60 * 86_400_000 }, 2 ** 31 - 1]
  ]
  for (const [i, [cacheControl, options, expected]] of cases.entries()) {
    serve(`/refresh-${i}`, set(a), cacheControl === undefined ? {} : { 'cache-control': cacheControl })
    delays.length = 0
    const { keys, fetches } = remote({ jwksUri: `${server.url}/refresh-${i}` }, options)
    keys.start()
    await until(() => delays.length > 0)
    t.same(delays, [expected], `${cacheControl ?? 'no Cache-Control'}: ${expected} ms`)
    t.same(fetches, ['initial ok'])
    keys.dispose()
  }
})

t.test('the key set verifies tokens by kid; asked for JSON', async t => {
  serve('/plain', set(a, c))
  const { keys } = remote({ jwksUri: `${server.url}/plain` })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice', 'fetched on the first token when not started')
  t.equal(await check(keys, await mint(c, { sub: 'carol' })), 'sub carol')
  t.equal(accepts.at(-1), 'application/json')
})

t.test('a user and password in a URL: sent as Basic credentials (undici sends none written in the URL), hidden in every line and error', async t => {
  // Percent-encoded in the URL, as written in the config; the provider gets them decoded.
  const basic = Buffer.from('svc:S3cret Pw@1').toString('base64')
  const at = (path: string) => `${server.url.replace('://', '://svc:S3cret%20Pw%401@')}${path}`
  const shown = (path: string) => `${server.url.replace('://', '://[redacted]@')}${path}`
  const broken = { kty: 'RSA', kid: 'broken', n: 'AAAA', e: 'AQAB' }
  Object.assign(serve('/private/jwks', set(a, broken)), { basic })
  Object.assign(serve('/private/.well-known/openid-configuration', { issuer: `${server.url}/private`, jwks_uri: `${server.url}/private/jwks` }), { basic })
  serve('/public/.well-known/openid-configuration', { issuer: `${server.url}/public`, jwks_uri: at('/private/jwks') })
  Object.assign(serve('/private/missing', 'missing', {}, 404), { basic })

  const direct = remote({ jwksUri: at('/private/jwks') })
  t.equal(await check(direct.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'jwksUri: the provider got the credentials')
  t.same(direct.lines.filter(l => l.msg === 'jwt-auth: keys of the key set are unusable; left out').map(l => l.url), [shown('/private/jwks')], 'the unusable key\'s line: the URL hidden')
  const discovered = remote({ issuer: `${server.url}/public` })
  t.equal(await check(discovered.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'a jwks_uri from discovery with a user and password: sent too')

  const failed = async (source: RemoteKeyOptions['source']) => {
    const r = remote(source)
    t.equal(await check(r.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
    return { line: r.lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet'), all: JSON.stringify(r.lines) }
  }
  const wrong = await failed({ jwksUri: at('/private/jwks').replace('Pw%401', 'Pw%402') })
  t.equal(wrong.line?.err, `${shown('/private/jwks')} answered 401`, 'other credentials: refused by the provider, the URL hidden')
  const missing = await failed({ jwksUri: at('/private/missing') })
  t.equal(missing.line?.err, `${shown('/private/missing')} answered 404`, 'the provider\'s answer, with the credentials it got: the URL hidden')
  const issuer = await failed({ issuer: at('/private') })
  t.equal(issuer.line?.err, `discovery document names issuer "${server.url}/private", not ${shown('/private')}`, 'discovery got the credentials; the issuer named hidden')
  for (const all of [wrong.all, missing.all, issuer.all, JSON.stringify(direct.lines), JSON.stringify(discovered.lines)]) t.notMatch(all, /S3cret/, 'no line holds the password')
})

t.test('a fetch that fails before any key set: 503 (KeysUnavailable), retried after a backoff of 1 s doubling to 30 s (or the cooldown), not the cooldown', async t => {
  const down = serve('/down', 'down', {}, 503)
  const { keys, fetches, lines } = remote({ jwksUri: `${server.url}/down` }, { cooldownMs: 86_400_000 })
  delays.length = 0
  keys.start()
  await until(() => delays.length > 0)
  t.same(delays, [1_000], 'the next try a second later, not a day (the cooldown)')
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.equal(down.hits, 1, 'tokens do not make it fetch again within the backoff')
  t.same(fetches, ['initial error'])
  for (const next of [2_000, 4_000, 8_000, 16_000, 30_000, 30_000]) {
    delays.length = 0
    void refreshes.at(-1)?.()
    await until(() => delays.length > 0)
    t.same(delays, [next], `then ${next / 1000} s later`)
  }
  t.equal(down.hits, 7, 'each retry fetched')
  const warn = lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet')
  t.same([warn?.level, warn?.err, warn?.trigger, warn?.kept], [40, `${server.url}/down answered 503`, 'initial', false])

  const retried = serve('/down-then-up', 'down', {}, 503)
  const eager = remote({ jwksUri: `${server.url}/down-then-up` }, { cooldownMs: 0 })
  t.equal(await check(eager.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE', 'cooldown 0: the token fetches, in vain')
  retried.status = 200
  retried.body = JSON.stringify(set(a))
  t.equal(await check(eager.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE', 'not again within a second')
  aSecondOn()
  t.equal(await check(eager.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the next token fetches again, and gets the keys')
  t.same(eager.fetches, ['initial error', 'initial ok'])
  t.equal(retried.hits, 2)

  // A failing provider and a cooldown of 0: the background retry waits a second, not 0 ms.
  serve('/down-eager', 'down', {}, 503)
  const looping = remote({ jwksUri: `${server.url}/down-eager` }, { cooldownMs: 0 })
  delays.length = 0
  looping.keys.start()
  await until(() => delays.length > 0)
  t.same(delays, [1_000], 'the next background try a second later')

  // A cooldown under the 30 s cap bounds the backoff; once a set is held, a failed refresh waits the cooldown.
  const p = serve('/down-short', 'down', {}, 503)
  const short = remote({ jwksUri: `${server.url}/down-short` }, { cooldownMs: 5_000 })
  delays.length = 0
  short.keys.start()
  await until(() => delays.length > 0)
  for (const next of [2_000, 4_000, 5_000, 5_000]) {
    delays.length = 0
    void refreshes.at(-1)?.()
    await until(() => delays.length > 0)
    t.same(delays, [next], `then ${next / 1000} s later`)
  }
  Object.assign(p, { status: 200, body: JSON.stringify(set(a)) })
  delays.length = 0
  void refreshes.at(-1)?.()
  await until(() => delays.length > 0)
  t.equal(await check(short.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the provider back: the retry got the set')
  Object.assign(p, { status: 503, body: 'down' })
  delays.length = 0
  void refreshes.at(-1)?.()
  await until(() => delays.length > 0)
  t.same(delays, [5_000], 'a set held: a failed refresh is retried a cooldown on')
  t.same(short.fetches, ['initial error', 'refresh error', 'refresh error', 'refresh error', 'refresh error', 'refresh ok', 'refresh error'])
})

t.test('concurrent tokens share one fetch', async t => {
  const p = serve('/shared', set(a))
  const { keys, fetches } = remote({ jwksUri: `${server.url}/shared` }, { cooldownMs: 0 })
  const token = await mint(a, { sub: 'alice' })
  t.same(await Promise.all(Array.from({ length: 10 }, () => check(keys, token))), Array(10).fill('sub alice'))
  t.equal(p.hits, 1)
  const strangers = await Promise.all(Array.from({ length: 10 }, (_, i) => mint(b, { sub: 'bob' }, { kid: `junk-${i}` })))
  aSecondOn()
  t.same(new Set(await Promise.all(strangers.map(s => check(keys, s)))), new Set(['ERR_JWKS_NO_MATCHING_KEY']))
  t.equal(p.hits, 2, '10 unknown kids at once: one refetch')
  t.same(fetches, ['initial ok', 'unknown_kid ok'])
})

t.test('tokens waiting for an unknown-kid refetch in flight get its keys, cooldown or not', async t => {
  const p = serve('/in-flight', set(a))
  const { keys, fetches } = remote({ jwksUri: `${server.url}/in-flight` }, { cooldownMs: 100 })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  // The first unknown kid may refetch once the cooldown (and the floor) has passed; the others come within it.
  aSecondOn()
  p.body = JSON.stringify(set(a, b))
  const tokens = await Promise.all(Array.from({ length: 5 }, (_, i) => mint(b, { sub: `bob-${i}` })))
  t.same(await Promise.all(tokens.map(token => check(keys, token))), tokens.map((_, i) => `sub bob-${i}`))
  t.same(fetches, ['initial ok', 'unknown_kid ok'])
})

t.test('a token without kid that several keys fit is no unknown kid: nothing is fetched', async t => {
  const p = serve('/kidless', set({ ...a.jwk, kid: undefined }, { ...b.jwk, kid: undefined }))
  const { keys } = remote({ jwksUri: `${server.url}/kidless` }, { cooldownMs: 0 })
  t.equal(await check(keys, await mint(a, { sub: 'alice' }, { kid: undefined })), 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'jose hands the candidates over (token-verifier tries each)')
  t.equal(p.hits, 1)
})

t.test('an unknown kid refetches, at most once per cooldown', async t => {
  const p = serve('/rotate', set(a))
  const slow = remote({ jwksUri: `${server.url}/rotate` }, { cooldownMs: 3_600_000 })
  t.equal(await check(slow.keys, await mint(a, { sub: 'alice' })), 'sub alice')
  p.body = JSON.stringify(set(a, b))
  t.equal(await check(slow.keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY', 'within the cooldown: not fetched')
  t.equal(p.hits, 1)
  t.same(slow.fetches, ['initial ok'])

  const quick = remote({ jwksUri: `${server.url}/rotate` }, { cooldownMs: 0 })
  t.equal(await check(quick.keys, await mint(b, { sub: 'bob' })), 'sub bob')
  aSecondOn()
  t.equal(await check(quick.keys, await mint(c, { sub: 'carol' })), 'ERR_JWKS_NO_MATCHING_KEY', 'still unknown after the refetch')
  t.same(quick.fetches, ['initial ok', 'unknown_kid ok'])
})

t.test('cooldown 0: a flood of unknown kids fetches no more than once a second', async t => {
  const p = serve('/floor', set(a))
  const { keys, fetches } = remote({ jwksUri: `${server.url}/floor` }, { cooldownMs: 0 })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  const strangers = await Promise.all(Array.from({ length: 5 }, (_, i) => mint(b, { sub: 'bob' }, { kid: `flood-${i}` })))
  for (const token of strangers) t.equal(await check(keys, token), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(p.hits, 1, 'one after the other within a second of the first fetch: none fetches')
  aSecondOn()
  for (const token of strangers) t.equal(await check(keys, token), 'ERR_JWKS_NO_MATCHING_KEY')
  t.same(fetches, ['initial ok', 'unknown_kid ok'], 'a second later: one')
})

t.test('a failed refresh keeps the last good key set serving', async t => {
  const p = serve('/flaky', set(a))
  const { keys, fetches, lines } = remote({ jwksUri: `${server.url}/flaky` }, { cooldownMs: 0 })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  for (const [status, body, error] of [
    [503, 'down', `${server.url}/flaky answered 503`],
    [200, '{"keys": "none"}', 'JSON Web Key Set malformed'],
    [200, 'not json', 'Unexpected token \'o\', "not json" is not valid JSON'],
    [200, `{"keys":[],"pad":"${'x'.repeat(1 << 20)}"}`, `${server.url}/flaky: response larger than 1048576 bytes`]
  ] as const) {
    Object.assign(p, { status, body })
    lines.length = 0
    aSecondOn()
    t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY', `${error}: an unknown kid refetched in vain`)
    t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the known key still verifies')
    const warn = lines.find(l => l.msg === 'jwt-auth: key set fetch failed; the last good key set keeps serving')
    t.same([warn?.err, warn?.trigger, warn?.kept], [error, 'unknown_kid', true])
  }
  t.same(fetches, ['initial ok', 'unknown_kid error', 'unknown_kid error', 'unknown_kid error', 'unknown_kid error'])
  const exact = JSON.stringify(set(a, b))
  Object.assign(p, { status: 200, body: exact + ' '.repeat((1 << 20) - exact.length) })
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'a key set of exactly 1 MiB is read')
})

t.test('a provider that does not answer: the fetch gives up after the timeout', async t => {
  const p = serve('/hang', set(a))
  p.hang = true
  const { keys, lines } = remote({ jwksUri: `${server.url}/hang` }, { timeoutMs: 200, cooldownMs: 3_600_000 })
  const started = performance.now()
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.ok(performance.now() - started < 5_000, 'well before 5 s (generous: the machine may be busy)')
  t.ok(lines.some(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet'))
})

t.test('generation: bumped when a key leaves the set (or changes), not when one is added or nothing changed', async t => {
  const p = serve('/generations', set(a))
  const { keys } = remote({ jwksUri: `${server.url}/generations` })
  const refetch = async () => { aSecondOn(); await check(keys, await mint(c, { sub: 'x' }, { kid: 'unknown' })); return keys.generation }
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  t.equal(keys.generation, 0)
  t.equal(await refetch(), 0, 'the same set again')
  p.body = JSON.stringify(set(a, b))
  t.equal(await refetch(), 0, 'a key added')
  p.body = JSON.stringify(set(b))
  t.equal(await refetch(), 1, 'a key removed')
  t.equal(await refetch(), 1)
  p.body = JSON.stringify(set({ ...b.jwk, n: a.jwk.n }))
  t.equal(await refetch(), 2, 'a key replaced under the same kid')
  p.body = JSON.stringify(set())
  t.equal(await refetch(), 2, 'an empty set is a failed fetch: no key removed')
})

t.test('an empty key set is a failed fetch: 503 before any set, the last good one kept after', async t => {
  const p = serve('/empty', set())
  const { keys, fetches, lines } = remote({ jwksUri: `${server.url}/empty` }, { cooldownMs: 0 })
  const warnings = () => lines.filter(l => l.level === 40).map(l => [l.msg, l.err, l.kept])
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE', 'no key set ever fetched: 503 auth_unavailable, not 401 unknown_key')
  t.same(warnings(), [['jwt-auth: key set fetch failed; no keys yet', 'the key set has no keys', false]])
  p.body = JSON.stringify(set(a))
  aSecondOn()
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  p.body = '{"keys":[]}'
  lines.length = 0
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY', 'an unknown kid refetches the empty set')
  t.same(warnings(), [['jwt-auth: key set fetch failed; the last good key set keeps serving', 'the key set has no keys', true]])
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the last good set keeps serving')
  t.equal(keys.generation, 0, 'no key left it')
  t.same(fetches, ['initial error', 'initial ok', 'unknown_kid error'])
})

t.test('OIDC discovery: the document must name the issuer it was fetched for and an http(s) jwks_uri; fetched once', async t => {
  const jwks = serve('/idp/jwks', set(a))
  const doc = serve('/idp/.well-known/openid-configuration', { issuer: `${server.url}/idp`, jwks_uri: `${server.url}/idp/jwks` })
  const { keys, fetches } = remote({ issuer: `${server.url}/idp` })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.same([doc.hits, jwks.hits], [1, 2], 'the refetch goes to the jwks_uri, without discovery again')
  t.same(fetches, ['initial ok', 'unknown_kid ok'])

  serve('/slash/.well-known/openid-configuration', { issuer: `${server.url}/slash/`, jwks_uri: `${server.url}/idp/jwks` })
  t.equal(await check(remote({ issuer: `${server.url}/slash/` }).keys, await mint(a, { sub: 'alice' })), 'sub alice', 'an issuer with a trailing slash')

  const refused = async (name: string, body: unknown, err: string, status = 200) => {
    serve(`/${name}/.well-known/openid-configuration`, body, {}, status)
    const r = remote({ issuer: `${server.url}/${name}` })
    t.equal(await check(r.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE', name)
    t.equal(r.lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet')?.err, err)
  }
  const before = jwks.hits
  await refused('other', { issuer: 'https://evil.example.com', jwks_uri: `${server.url}/idp/jwks` },
    `discovery document names issuer "https://evil.example.com", not ${server.url}/other`)
  await refused('no-issuer', { jwks_uri: `${server.url}/idp/jwks` }, `discovery document names issuer undefined, not ${server.url}/no-issuer`)
  await refused('no-uri', { issuer: `${server.url}/no-uri` }, 'discovery document has no http(s) jwks_uri')
  await refused('file-uri', { issuer: `${server.url}/file-uri`, jwks_uri: 'file:///etc/jwks.json' }, 'discovery document has no http(s) jwks_uri')
  await refused('embedded', { issuer: `${server.url}/embedded`, jwks_uri: `file:///x?${server.url}/idp/jwks` }, 'discovery document has no http(s) jwks_uri')
  await refused('not-string', { issuer: `${server.url}/not-string`, jwks_uri: [`${server.url}/idp/jwks`] }, 'discovery document has no http(s) jwks_uri')
  await refused('down', 'down', `${server.url}/down/.well-known/openid-configuration answered 503`, 503)
  // Not an object: null read as one logged "Cannot read properties of null".
  await refused('null', 'null', 'discovery document is not a JSON object')
  await refused('array', '[]', 'discovery document is not a JSON object')
  // An issuer of 900 KB was quoted whole in a warning repeated each cooldown: 200 characters of it.
  const cut = (value: unknown) => { const json = JSON.stringify(value); return `${json.slice(0, 200)}…(+${json.length - 200} characters)` }
  const long = `https://idp.example.com/${'a'.repeat(900_000)}`
  await refused('long', { issuer: long, jwks_uri: `${server.url}/idp/jwks` }, `discovery document names issuer ${cut(long)}, not ${server.url}/long`)
  const big = { name: 'b'.repeat(900_000) }
  await refused('big', { issuer: big, jwks_uri: `${server.url}/idp/jwks` }, `discovery document names issuer ${cut(big)}, not ${server.url}/big`)
  t.equal(jwks.hits, before, 'no key set fetched for any of them')
  serve('/https/.well-known/openid-configuration', { issuer: `${server.url}/https`, jwks_uri: 'https://127.0.0.1:1/jwks' })
  const https = remote({ issuer: `${server.url}/https` })
  t.equal(await check(https.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.match(https.lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet')?.err, /ECONNREFUSED|connect/, 'an https:// jwks_uri is fetched')
})

t.test('the background refresh: a new key set, or a failure that keeps the old one', async t => {
  const p = serve('/background', set(a), { 'cache-control': 'max-age=60' })
  const { keys, fetches, lines } = remote({ jwksUri: `${server.url}/background` }, { cooldownMs: 5_000 })
  delays.length = 0
  refreshes.length = 0
  keys.start()
  await until(() => refreshes.length === 1)
  p.body = JSON.stringify(set(b))
  p.headers = {}
  refreshes[0]?.()
  await until(() => refreshes.length === 2)
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'the refreshed set')
  t.equal(keys.generation, 1, 'a left it')
  p.status = 503
  refreshes[1]?.()
  await until(() => refreshes.length === 3)
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'kept after a failed refresh')
  t.same(delays, [54_000, 600_000, 5_000], 'max-age 60, then none (refresh), then a failure (cooldown)')
  t.same(fetches, ['initial ok', 'refresh ok', 'refresh error'])
  t.same(lines.filter(l => l.level === 40).map(l => [l.msg, l.trigger, l.kept]), [['jwt-auth: key set fetch failed; the last good key set keeps serving', 'refresh', true]])
  t.equal(p.hits, 3, 'no other fetch')
})

t.test('disposed: no refresh is scheduled any more', async t => {
  const p = serve('/disposed', set(a))
  p.hang = true
  const { keys } = remote({ jwksUri: `${server.url}/disposed` }, { timeoutMs: 200 })
  delays.length = 0
  keys.start()
  keys.dispose()
  await until(() => p.hits === 1)
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE', 'the fetch in flight ends (timeout)')
  t.same(delays, [], 'and schedules nothing')
})

t.test('a key set held for the next config (a reload): served at once, refreshed when due, kept while the provider is down; dropped with its last user', async t => {
  const p = serve('/held', set(a), { 'cache-control': 'max-age=100' })
  const source = { jwksUri: `${server.url}/held` }
  const id = JSON.stringify(source)
  const held = holdKeys(id)
  const before = remote(source, {}, held)
  delays.length = 0
  before.keys.start()
  await until(() => delays.length === 1)
  t.same(delays, [90_000])
  p.status = 503
  // A reload: the next config's key set is set up before the old one is disposed.
  const after = remote(source, {}, holdKeys(id))
  before.keys.dispose()
  delays.length = 0
  after.keys.start()
  t.same(delays, [], 'not fetched at once: the refresh planned when the held set is due stays (the source\'s timer)')
  t.equal(await check(after.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the held set verifies, the provider down')
  t.same(after.fetches, [])
  t.equal(p.hits, 1)
  refreshes.at(-1)?.()
  await until(() => after.fetches.length === 1)
  t.same(after.fetches, ['refresh error'], 'when due, the timer refreshes for the config in service')
  t.equal(await check(after.keys, await mint(a, { sub: 'alice' })), 'sub alice', 'the provider down: the held set stays')
  after.keys.dispose()
  const fresh = holdKeys(id)
  t.not(fresh, held, 'no config uses the source any more: its set is dropped')
  t.equal(fresh.set, undefined)
  remote(source, {}, fresh).keys.dispose()
})

t.test('one source, whatever the settings and configs naming it: one fetch in flight, one cooldown (the shortest), one refresh timer', async t => {
  let answer = () => {}
  const p = serve('/one-source', set(a), { 'cache-control': 'max-age=100' })
  p.held = new Promise(resolve => { answer = resolve })
  const source = { jwksUri: `${server.url}/one-source` }
  const id = JSON.stringify(source)
  const first = remote(source, { cooldownMs: 60_000 }, holdKeys(id))
  delays.length = 0
  first.keys.start()
  await until(() => p.hits === 1)
  // Another route's settings, or a reload, while the first fetch is under way: it waits for that one.
  const second = remote(source, { cooldownMs: 10_000, timeoutMs: 4_000 }, holdKeys(id))
  second.keys.start()
  const waiting = check(second.keys, await mint(a, { sub: 'alice' }))
  answer()
  t.equal(await waiting, 'sub alice')
  t.equal(await check(first.keys, await mint(a, { sub: 'alice' })), 'sub alice')
  t.equal(p.hits, 1, 'one fetch, not one per settings')
  t.same(delays, [90_000], 'one refresh timer, at 90% of max-age')

  // A flood of unknown kids on both: the shortest cooldown (10 s) decides, for the source.
  skew += 10_000
  t.equal(await check(first.keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(p.hits, 2, 'the first unknown kid after 10 s fetches')
  t.equal(await check(second.keys, await mint(b, { sub: 'bob' }, { kid: 'other' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(p.hits, 2, 'the other settings\' key set shares that cooldown')

  // A reload: the cooldown goes on from the last fetch, and the refresh timer is the source's.
  const third = remote(source, { cooldownMs: 10_000 }, holdKeys(id))
  first.keys.dispose()
  second.keys.dispose()
  delays.length = 0
  third.keys.start()
  t.equal(await check(third.keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(p.hits, 2, 'an unknown kid right after the reload fetches nothing: the cooldown runs on')
  t.same(delays, [], 'the refresh planned stays: none sooner')
  t.same([first.fetches, second.fetches, third.fetches], [['initial ok', 'unknown_kid ok'], [], []])
  p.body = JSON.stringify(set(a, b))
  refreshes.at(-1)?.()
  await until(() => third.fetches.length === 1)
  t.same(third.fetches, ['refresh ok'], 'the timer refreshes for the config in service')
  t.equal(await check(third.keys, await mint(b, { sub: 'bob' })), 'sub bob')
})

t.test('no key set yet: KeysUnavailable says in how many seconds the next fetch may run (Retry-After)', async t => {
  serve('/retry-after', 'down', {}, 503)
  const source = { jwksUri: `${server.url}/retry-after` }
  const { keys } = remote(source, { cooldownMs: 12_000 }, holdKeys(JSON.stringify(source)))
  const retryAfter = async () => {
    try {
      await keys.key({ alg: 'RS256', kid: 'a' }, { payload: '', signature: '' })
    } catch (err) {
      return (err as { retryAfter?: number }).retryAfter
    }
  }
  // Before any set the retry backs off (1 s, doubling, to 30 s or the cooldown): Retry-After follows it.
  t.equal(await retryAfter(), 1, 'a second from the fetch just failed, not the cooldown')
  skew += 1_000
  t.equal(await retryAfter(), 2, 'a fetch may run: it does, fails, and the wait doubles')
  skew += 1_500
  t.equal(await retryAfter(), 1, 'rounded up')
  skew += 500
  t.equal(await retryAfter(), 4)
  skew += 4_000
  t.equal(await retryAfter(), 8)
  skew += 8_000
  t.equal(await retryAfter(), 12, 'capped by the cooldown')
  const quick = remote(source, { cooldownMs: 0 }, holdKeys(JSON.stringify(source)))
  t.equal(await retryAfter(), 1, 'at least 1, and the shortest cooldown of the source\'s settings')
  quick.keys.dispose()
  skew += 12_000
  t.equal(await retryAfter(), 12, 'the cooldown again, after the next failure')
})

t.test('a token without kid: no fetch for it, and only keys without kid are tried', async t => {
  const p = serve('/kid-needed', set(a, b))
  const { keys, lines } = remote({ jwksUri: `${server.url}/kid-needed` }, { cooldownMs: 0 }, holdKeys(JSON.stringify({ jwksUri: `${server.url}/kid-needed` })))
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  aSecondOn()
  t.equal(await check(keys, await mint(a, { sub: 'alice' }, { kid: undefined })), 'ERR_JWT_MISSING_KID', 'every key has a kid: missing_kid, no key handed over to check a signature with')
  t.equal(await check(keys, await mint(b, { sub: 'bob' }, { kid: undefined })), 'ERR_JWT_MISSING_KID')
  t.equal(p.hits, 1, 'and no refetch')
  const said = lines.filter(l => l.msg === MISSING_KID_WARNING)
  t.same(said.map(l => [l.level, l.url]), [[40, `${server.url}/kid-needed`]], 'said once for the source, naming it')
  const next = remote({ jwksUri: `${server.url}/kid-needed` }, { cooldownMs: 1 }, holdKeys(JSON.stringify({ jwksUri: `${server.url}/kid-needed` })))
  t.equal(await check(next.keys, await mint(a, { sub: 'alice' }, { kid: undefined })), 'ERR_JWT_MISSING_KID')
  t.same(next.lines.filter(l => l.msg === MISSING_KID_WARNING), [], 'not again for other settings of the source (nor a reload\'s)')
  p.body = JSON.stringify(set(a, { ...b.jwk, kid: undefined }))
  aSecondOn()
  t.equal(await check(keys, await mint(c, { sub: 'carol' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(await check(keys, await mint(b, { sub: 'bob' }, { kid: undefined })), 'sub bob', 'the key without kid')
  t.equal(await check(keys, await mint(a, { sub: 'alice' }, { kid: undefined })), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'not the one with a kid')
  t.equal(await check(keys, await mint(b, { sub: 'bob' }, { kid: 'b-renamed' })), 'ERR_JWKS_NO_MATCHING_KEY', 'a remote key without kid is not for a token naming one')
})

t.test('unusable keys in a fetched set are left out, each said once, in a line naming the kids; a set with no usable key is a failed fetch', async t => {
  const broken = { kty: 'RSA', kid: 'k1', n: 'AAAA', e: 'AQAB' }
  const small = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'small' }
  const encryption = { ...c.jwk, kid: 'enc-1', use: 'enc' }
  const p = serve('/unusable', set(broken, small, encryption, b))
  const { keys, lines, fetches } = remote({ jwksUri: `${server.url}/unusable` }, { cooldownMs: 0 })
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'the usable key verifies')
  aSecondOn()
  t.equal(await check(keys, await mint(a, { sub: 'x' }, { kid: 'k1' })), 'ERR_JWKS_NO_MATCHING_KEY', 'a token naming the broken key: an unknown key (401 unknown_key), not a malformed token')
  t.same(fetches, ['initial ok', 'unknown_kid ok'])
  const warned = () => lines.filter(l => l.msg === 'jwt-auth: keys of the key set are unusable; left out').map(l => [l.level, l.unusable, l.keys, l.url])
  t.same(warned(), [
    [40, 2, [
      { kid: 'k1', problem: 'an RSA key of 0 bits; signatures need 2048 bits or more' },
      { kid: 'small', problem: 'an RSA key of 1024 bits; signatures need 2048 bits or more' }
    ], `${server.url}/unusable`]
  ], 'once, though the set was fetched twice; the encryption key left out quietly')

  p.body = JSON.stringify(set(broken, { kty: 'RSA', kid: 'no-e', n: 'AQAB' }))
  aSecondOn()
  t.equal(await check(keys, await mint(a, { sub: 'x' }, { kid: 'other' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(lines.find(l => l.msg === 'jwt-auth: key set fetch failed; the last good key set keeps serving')?.err, 'none of the key set\'s 2 keys is usable')
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'the last good set keeps serving')
  t.match(warned().at(-1), [40, 1, [{ kid: 'no-e', problem: /^not a usable public JWK: / }]], 'the new key alone')
})

t.test('a huge set of junk: the first 100 keys read, the rest left out, said once; a refused set retried each cooldown says nothing new', async t => {
  const junk = (i: number) => ({ kty: 'RSA', kid: `junk-${i}`, n: 'AAAA', e: 'AQAB' })
  const p = serve('/huge', { keys: [...Array.from({ length: 100 }, (_, i) => junk(i)), b.jwk, ...Array<number>(10_000).fill(0)] })
  const { keys, lines, fetches } = remote({ jwksUri: `${server.url}/huge` }, { cooldownMs: 0 })
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_KEYS_UNAVAILABLE', 'a usable key past the first 100 is not read')
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_KEYS_UNAVAILABLE', 'fetched again (cooldown 0): refused again')
  t.same(fetches, ['initial error', 'initial error'])
  t.same(lines.map(l => l.msg), [
    'jwt-auth: the key set has more than 100 keys; only the first 100 are read',
    'jwt-auth: keys of the key set are unusable; left out',
    'jwt-auth: key set fetch failed; no keys yet',
    'jwt-auth: key set fetch failed; no keys yet'
  ], 'the second fetch: only that it failed')
  t.match(lines[0], { level: 40, url: `${server.url}/huge`, keys: 10_101, read: 100 })
  t.match(lines[1], { level: 40, unusable: 100, keys: [0, 1, 2, 3, 4].map(i => ({ kid: `junk-${i}`, problem: 'an RSA key of 0 bits; signatures need 2048 bits or more' })) })
  t.equal((lines[1]?.keys as unknown[]).length, 5, 'the first five named')
  t.equal(lines[2]?.err, 'none of the first 100 of the key set\'s 10101 keys is usable')

  p.body = JSON.stringify({ keys: [b.jwk, ...Array.from({ length: 100 }, (_, i) => junk(i))] })
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'a usable key among the first 100 verifies')
  t.equal(lines.length, 4, 'the same junk keys and the same excess: nothing said again')
  p.body = JSON.stringify(set(b))
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' }, { kid: 'other' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(lines.length, 4, 'a set back to size says nothing')
})

t.test('an https:// issuer whose discovery names a plain http:// jwks_uri: refused, not fetched', async t => {
  const ca = createTestCa('idp', fn => t.teardown(fn))
  const leaf = ca.issue('idp', 'IP:127.0.0.1')
  const jwks = serve('/downgraded', set(a))
  let jwksUri = `${server.url}/downgraded`
  const tls = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    const body = req.url === '/jwks' ? set(a) : { issuer, jwks_uri: jwksUri }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  await new Promise<void>(resolve => tls.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { tls.close() })
  const issuer = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`
  const dispatcher = getGlobalDispatcher()
  setGlobalDispatcher(new Agent({ connect: { ca: ca.cert } }))
  t.teardown(() => setGlobalDispatcher(dispatcher))

  const downgraded = remote({ issuer })
  t.equal(await check(downgraded.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.equal(downgraded.lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet')?.err,
    `discovery document names jwks_uri ${server.url}/downgraded: plain http:// for an https:// issuer is refused`)
  t.equal(jwks.hits, 0, 'the keys were not fetched over http://')
  jwksUri = `${issuer}/jwks`
  t.equal(await check(remote({ issuer }).keys, await mint(a, { sub: 'alice' })), 'sub alice', 'an https:// jwks_uri is')
})

t.test('a failed fetch is logged with its step and URL (secrets hidden): discovery and key set told apart', async t => {
  serve('/steps/.well-known/openid-configuration', 'down', {}, 503)
  const discovery = remote({ issuer: `${server.url}/steps` })
  t.equal(await check(discovery.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.match(discovery.lines.find(l => l.level === 40), { step: 'discovery', url: `${server.url}/steps/.well-known/openid-configuration` })

  // A timeout and a set with no usable key say no URL themselves.
  const hang = serve('/steps-hang?token=S3cret', set(a))
  hang.hang = true
  const host = server.url.replace('http://', '')
  const hung = remote({ jwksUri: `http://svc:S3cret@${host}/steps-hang?token=S3cret` }, { timeoutMs: 200 })
  t.equal(await check(hung.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  const warn = hung.lines.find(l => l.level === 40)
  t.match(warn, { step: 'jwks', url: /^http:\/\/\[redacted\]@127\.0\.0\.1:\d+\/steps-hang\?token=/ })
  t.notMatch(JSON.stringify(hung.lines), /S3cret/, 'no line holds the password or the query value')
  serve('/steps-unusable', set({ kty: 'RSA', kid: 'k1', n: 'AAAA', e: 'AQAB' }))
  const unusable = remote({ jwksUri: `${server.url}/steps-unusable` })
  t.equal(await check(unusable.keys, await mint(a, { sub: 'alice' })), 'ERR_KEYS_UNAVAILABLE')
  t.match(unusable.lines.find(l => l.msg === 'jwt-auth: key set fetch failed; no keys yet'), { step: 'jwks', url: `${server.url}/steps-unusable`, err: 'none of the key set\'s 1 keys is usable' })
})

t.test('a failed key set fetch reads the discovery document again at the next attempt: a moved jwks_uri is followed', async t => {
  const old = serve('/moving/old-jwks', set(a))
  const doc = serve('/moving/.well-known/openid-configuration', { issuer: `${server.url}/moving`, jwks_uri: `${server.url}/moving/old-jwks` })
  const { keys, fetches, lines } = remote({ issuer: `${server.url}/moving` })
  t.equal(await check(keys, await mint(a, { sub: 'alice' })), 'sub alice')
  // The provider moves its keys: the document names a new URL, the old one is gone.
  serve('/moving/new-jwks', set(a, b))
  doc.body = JSON.stringify({ issuer: `${server.url}/moving`, jwks_uri: `${server.url}/moving/new-jwks` })
  old.status = 404
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY', 'the old URL fails')
  t.match(lines.at(-1), { step: 'jwks', url: `${server.url}/moving/old-jwks`, err: `${server.url}/moving/old-jwks answered 404` })
  t.equal(doc.hits, 1, 'not read again within the attempt')
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'ERR_JWKS_NO_MATCHING_KEY', 'nor before the cooldown')
  t.equal(doc.hits, 1)
  aSecondOn()
  t.equal(await check(keys, await mint(b, { sub: 'bob' })), 'sub bob', 'the next attempt reads discovery, then the new URL')
  t.equal(doc.hits, 2)
  aSecondOn()
  t.equal(await check(keys, await mint(c, { sub: 'carol' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(doc.hits, 2, 'after a good fetch, the key set alone again')
  t.same(fetches, ['initial ok', 'unknown_kid error', 'unknown_kid ok', 'unknown_kid ok'])
})
