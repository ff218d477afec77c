import t from 'tap'
import { parseConfig } from '../../../src/config/load.ts'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'

/** The problems a config is refused with at load, as `portcullis validate` prints them (undefined: it loads). */
async function problems (body: string): Promise<string | undefined> {
  const yaml = `server: { listen: { port: 8080 } }
consumers: [ { id: a }, { id: b } ]
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
${body}`
  return parseConfig(yaml, 'c.yaml', {}).then(() => undefined, (err: Error) => err.message)
}

t.test('auth plugins of one route admitting anonymous requests differently: an error at the key, found by validate', async t => {
  t.match(await problems(`plugins:
  key-auth: { anonymous: a }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      basic-auth: { anonymous: b }
`), /c\.yaml:11:\d+ routes\[0\]\.plugins\.basic-auth\.anonymous: admits requests without credentials as consumer "b", but key-auth on this route admits them as consumer "a": give the route's auth plugins the same anonymous consumer$/)
  t.match(await problems(`plugins:
  basic-auth: { anonymous: b }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { key-auth: {} } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", optional: true } } }
`), /c\.yaml:5:\d+ plugins\.basic-auth\.anonymous: on route "s" \(\/s\): admits requests without credentials as consumer "b", but jwt-auth on this route admits them as no consumer \(optional\): give the route's auth plugins the same anonymous consumer$/,
  'a top-level plugin: at its key, naming the route')
  t.match(await problems(`routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { key-auth: { anonymous: a }, basic-auth: { anonymous: a }, jwt-auth: { secret: "${SECRET}" } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { key-auth: { anonymous: a }, basic-auth: { anonymous: b } } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { key-auth: {}, basic-auth: {} } }
`), /^invalid configuration \(1 problem\):\nc\.yaml:6:\d+ routes\[1\]\.plugins\.basic-auth\.anonymous: /,
  'the same consumer, or one plugin alone admitting anonymous requests, is fine')
})

t.test('a forwarded claim in the header another auth plugin of the route reads its credential from: an error at the claim', async t => {
  t.match(await problems(`routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      key-auth: {}
      jwt-auth: { secret: "${SECRET}", forwardClaims: { key: x-api-key, email: x-user-email } }
`), /c\.yaml:10:\d+ routes\[0\]\.plugins\.jwt-auth\.forwardClaims\.key: "x-api-key" is where key-auth on this route reads its credential: forwarded claims are removed from every request first, so key-auth would never find one$/)
  t.match(await problems(`plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { user: X_Team_Key, pw: authorization } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { key-auth: { header: x-team-key } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { basic-auth: {}, jwt-auth: false } }
  - { name: u, match: { path: /u }, upstream: up }
`), /\(2 problems\):\nc\.yaml:5:\d+ plugins\.jwt-auth\.forwardClaims\.user: on route "r" \(\/r\): "X_Team_Key" is where key-auth on this route reads its credential.*\n.*forwardClaims\.pw: "authorization" is where this plugin reads tokens \(from\)/,
  'the `_` spelling too (the chain strips both); a route that turns jwt-auth off is not concerned')
})
