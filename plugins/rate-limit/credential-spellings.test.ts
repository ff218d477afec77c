import t from 'tap'
import { SignJWT } from 'jose'
import { gateway, limitedRoute, send, setup } from '../../test/helpers/rate-limit.ts'

// One credential written several ways is one counter: a limit by the header jwt-auth reads its
// token from (not Authorization) counts `x-token: bearer  T` as `x-token: Bearer T`.

const SECRET = 'a-shared-secret-of-at-least-32-characters!'

t.test('a limit by a header a Bearer token is read from: the scheme in any case, any spaces or tabs after it, one counter', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      jwt-auth: { secret: "${SECRET}", from: [ { header: x-token, scheme: Bearer } ] }
      rate-limit: { by: [ "header:x-token" ], limits: [ { name: one, requests: 1, window: 1h } ] }
`)
  t.teardown(() => gw.close())
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
  t.equal((await send(`${gw.url}/r`, { 'x-token': `Bearer ${token}` })).status, 200)
  const spellings = [...[2, 5, 60].map(n => `Bearer${' '.repeat(n)}${token}`), `bearer ${token}`, `BEARER ${token}`, `Bearer\t${token}`, `Bearer \t ${token}`]
  for (const v of spellings) t.equal((await send(`${gw.url}/r`, { 'x-token': v })).status, 429, JSON.stringify(v.slice(0, 12)))
})

t.test('a limit by a header no plugin reads: the value\'s first word in any case, white space after it as one space', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/r', '{ by: [ "header:x-device" ], limits: [ { name: one, requests: 1, window: 1h } ] }')}`)
  t.teardown(() => gw.close())
  t.equal((await send(`${gw.url}/r`, { 'x-device': 'Phone 1' })).status, 200)
  t.equal((await send(`${gw.url}/r`, { 'x-device': 'PHONE \t 1' })).status, 429)
  t.equal((await send(`${gw.url}/r`, { 'x-device': 'Phone 2' })).status, 200, 'what follows is read as sent')
  t.equal((await send(`${gw.url}/r`, { 'x-device': 'phone-1' })).status, 200, 'a single word is itself')
})
