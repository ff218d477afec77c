import t from 'tap'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'

// The query credentials of the route's auth plugins never reach a Location to another origin,
// hideCredentials or not: it would hand them to that site (its logs, the browser's history). A
// path-relative Location keeps them: the client sends them to this gateway again.
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
  - { name: key-away, match: { path: /k/* }, upstream: up, plugins: { key-auth: { query: api_key }, redirect: { to: "https://other.example.net/*" } } }
  - { name: key-here, match: { path: /ks/* }, upstream: up, plugins: { key-auth: { query: api_key }, redirect: { to: "/elsewhere/*?from=ks" } } }
  - { name: jwt-away, match: { path: /j/* }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { query: access_token } ] }, redirect: { to: "https://other.example.net/*" } } }
  - { name: jwt-here, match: { path: /js/* }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { query: access_token } ] }, redirect: { to: "/elsewhere/*", status: 308 } } }
  - name: both
    match: { path: /both/* }
    upstream: up
    plugins:
      jwt-auth: { secret: "${SECRET}", optional: true, from: [ { query: access_token } ] }
      key-auth: { query: api_key }
      redirect: { to: "https://other.example.net/*" }
`)
t.teardown(() => gw.close())
const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))

async function location (path: string, headers: Record<string, string> = {}): Promise<[number, string | undefined]> {
  const res = await request(`${gw.url}${path}`, { headers })
  await res.body.dump()
  return [res.statusCode, res.headers.location as string | undefined]
}

t.test('key-auth\'s query parameter, as key-auth reads it (PHP\'s `api.key` too, other cases), is dropped; other parameters kept', async t => {
  const cases: Array<[string, number, string]> = [
    [`/k/x?api_key=${KEY}&y=1`, 302, 'https://other.example.net/x?y=1'],
    [`/k/x?y=1&api.key=${KEY}&z=2`, 302, 'https://other.example.net/x?y=1&z=2'],
    [`/k/x?api_key=${KEY}&API_KEY=${KEY}`, 401, ''],
    [`/k/x?api_key=${KEY}`, 302, 'https://other.example.net/x'],
    [`/ks/a/b?api_key=${KEY}&y=1`, 302, `/elsewhere/a/b?from=ks&api_key=${KEY}&y=1`]
  ]
  for (const [path, status, expected] of cases) {
    const [got, where] = await location(path)
    t.same([got, where ?? ''], [status, expected], path)
  }
  t.same(await location('/k/x?y=1&Api_Key=other', { 'x-api-key': KEY }), [302, 'https://other.example.net/x?y=1'], 'with the key in the header, its query parameter in another case goes too')
})

t.test('jwt-auth\'s query parameter is dropped on a redirect to another origin, kept on one to this gateway', async t => {
  t.same(await location(`/j/x?access_token=${token}&y=1`), [302, 'https://other.example.net/x?y=1'])
  t.same(await location(`/js/x?y=1&access_token=${token}`), [308, `/elsewhere/x?y=1&access_token=${token}`])
})

t.test('every auth plugin\'s of the route, whichever decides', async t => {
  t.same(await location(`/both/x?access_token=${token}&api_key=${KEY}&y=1`), [302, 'https://other.example.net/x?y=1'])
  t.same(await location(`/both/x?api_key=${KEY}&y=1`), [302, 'https://other.example.net/x?y=1'])
})
