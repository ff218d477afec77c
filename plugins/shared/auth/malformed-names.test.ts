import t from 'tap'
import { SignJWT } from 'jose'
import { Client } from 'undici'
import { startGateway } from '../../../test/helpers/gateway.ts'
import { startUpstream } from '../../../test/helpers/upstream.ts'

// A query credential under a name with a bad escape (`api_key%00%FF`, a lone `%`) was read as the
// credential (a NUL cuts the name, as PHP reads it) but never removed (its removal decoded names
// with decodeURIComponent, which throws there): accepted, then handed to the upstream despite
// hideCredentials, and to another site in a redirect's Location. Every form read is removed.
const KEY = 'alice-key-0123456789abcdef'
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const up = await startUpstream()
t.teardown(() => up.close())
const gw = await startGateway(`
consumers:
  - { id: alice, credentials: { key-auth: { keys: [ ${KEY} ] } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: key-hidden, match: { path: /kh }, upstream: up, plugins: { key-auth: { query: api_key, hideCredentials: true } } }
  - { name: key-off, match: { path: /ko/* }, upstream: up, plugins: { key-auth: { query: api_key }, redirect: { to: "https://other.example.net/*" } } }
  - { name: jwt-hidden, match: { path: /jh }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", hideCredentials: true, from: [ { header: authorization, scheme: Bearer }, { query: access_token } ] } } }
  - { name: jwt-off, match: { path: /jo/* }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { query: access_token } ] }, redirect: { to: "https://other.example.net/*" } } }
`)
t.teardown(() => gw.close())
const client = new Client(gw.url)
t.teardown(() => client.close())
const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))

/** Status, and the upstream's URL or the Location, for a path sent exactly as written. */
async function call (path: string, headers: Record<string, string> = {}): Promise<[number, string | undefined]> {
  const res = await client.request({ method: 'GET', path, headers })
  const text = await res.body.text()
  return [res.statusCode, res.statusCode === 200 ? (JSON.parse(text) as { url: string }).url : res.headers.location as string | undefined]
}

// Names the reader takes for `name` (the credential), each as sent: a bad escape after a NUL, a
// lone `%`, `+` and `.` for `_` (PHP), a percent-encoded `_`.
const spellings = (name: string): string[] => {
  const [a, b] = name.split('_') as [string, string]
  return [`${name}%00%FF`, `${name}%00%`, `${name}%00%zz%`, `${name}%00x%E0%A4%A`, `${a}+${b}`, `${a}.${b}`, `${a}%5F${b}`, `+${name}%00%FF`]
}
// Names it takes for another case of it (ASP.NET's copy): never the credential, removed beside one.
const copies = (name: string): string[] => [`${name.toUpperCase()}%00%FF`, `${name.toUpperCase()}%00%`, `${name[0]?.toUpperCase() as string}${name.slice(1).replace('_', '+')}%00%`]

t.test('key-auth: a key under any name it reads as its parameter is accepted and removed (hideCredentials, an off-site Location)', async t => {
  for (const name of spellings('api_key')) {
    t.same(await call(`/kh?${name}=${KEY}&y=1`), [200, '/kh?y=1'], `hidden from the upstream: ${name}`)
    t.same(await call(`/kh?y=1&${name}=${KEY}`), [200, '/kh?y=1'], `hidden, last: ${name}`)
    t.same(await call(`/ko/a?${name}=${KEY}&y=1`), [302, 'https://other.example.net/a?y=1'], `not in the Location: ${name}`)
    t.same(await call(`/ko/a?y=1&${name}=${KEY}`), [302, 'https://other.example.net/a?y=1'], `not in the Location, last: ${name}`)
  }
  for (const name of copies('api_key')) {
    t.same(await call(`/kh?y=1&${name}=forged`, { 'x-api-key': KEY }), [200, '/kh?y=1'], `a copy beside the header's key is removed: ${name}`)
    t.same(await call(`/ko/a?${name}=forged&y=1`, { 'x-api-key': KEY }), [302, 'https://other.example.net/a?y=1'], `and left out of the Location: ${name}`)
    t.same((await call(`/kh?api_key=${KEY}&${name}=${KEY}`))[0], 401, `beside the parameter: malformed: ${name}`)
  }
})

t.test('jwt-auth: a token under any name it reads as its parameter is accepted and removed (hideCredentials, an off-site Location)', async t => {
  for (const name of spellings('access_token')) {
    t.same(await call(`/jh?${name}=${token}&y=1`), [200, '/jh?y=1'], `hidden from the upstream: ${name}`)
    t.same(await call(`/jo/a?y=1&${name}=${token}`), [302, 'https://other.example.net/a?y=1'], `not in the Location: ${name}`)
  }
  for (const name of copies('access_token')) {
    t.same(await call(`/jh?y=1&${name}=forged`, { authorization: `Bearer ${token}` }), [200, '/jh?y=1'], `a copy beside the header's token is removed: ${name}`)
    t.same(await call(`/jo/a?${name}=forged&y=1`, { authorization: `Bearer ${token}` }), [302, 'https://other.example.net/a?y=1'], `and left out of the Location: ${name}`)
  }
})

// Names Rack 2 (normalize_params) or qs (Express's query parser) read as the parameter: beside a
// valid credential one was let through unjudged, to the upstream despite hideCredentials (qs read
// `?%5Bapi_key%5D=forged` as api_key: forged) and to another site in a Location.
const bracketed = (name: string): string[] => [`%5B${name}%5D`, `[${name}]`, `${name}]`, `]${name}`, `[${name}`, `${name}%5D%5Bx%5D`]

t.test('a parameter in brackets as Rack 2 or qs reads it: malformed beside the credential and alone, removed beside another location\'s', async t => {
  for (const name of bracketed('api_key')) {
    t.same((await call(`/kh?api_key=${KEY}&${name}=forged`))[0], 401, `beside the key: malformed: ${name}`)
    t.same((await call(`/kh?${name}=${KEY}`))[0], 401, `alone: malformed: ${name}`)
    t.same(await call(`/kh?y=1&${name}=forged`, { 'x-api-key': KEY }), [200, '/kh?y=1'], `beside the header's key: removed (hideCredentials): ${name}`)
    t.same(await call(`/ko/a?${name}=forged&y=1`, { 'x-api-key': KEY }), [302, 'https://other.example.net/a?y=1'], `and left out of an off-site Location: ${name}`)
  }
  for (const name of bracketed('access_token')) {
    t.same((await call(`/jh?access_token=${token}&${name}=forged`))[0], 401, `jwt-auth, beside the token: malformed: ${name}`)
    t.same(await call(`/jh?y=1&${name}=forged`, { authorization: `Bearer ${token}` }), [200, '/jh?y=1'], `jwt-auth, beside the header's token: removed: ${name}`)
    t.same(await call(`/jo/a?${name}=forged&y=1`, { authorization: `Bearer ${token}` }), [302, 'https://other.example.net/a?y=1'], `jwt-auth, left out of an off-site Location: ${name}`)
  }
})
