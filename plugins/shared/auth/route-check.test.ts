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
      jwt-auth: { secret: "${SECRET}", forwardClaims: { sub: x-api-key, email: x-user-email } }
`), /c\.yaml:10:\d+ routes\[0\]\.plugins\.jwt-auth\.forwardClaims\.sub: "x-api-key" is where key-auth on this route reads its credential: forwarded claims are removed from every request first, so key-auth would never find one$/)
  t.match(await problems(`plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { user: X_Team_Key, pw: authorization } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { key-auth: { header: x-team-key } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { basic-auth: {}, jwt-auth: false } }
  - { name: u, match: { path: /u }, upstream: up }
`), /\(3 problems\):\nc\.yaml:5:\d+ plugins\.jwt-auth\.forwardClaims\.user: on route "r" \(\/r\): "X_Team_Key" is where key-auth on this route reads its credential.*\n.*forwardClaims\.pw: "authorization" is where this plugin reads tokens \(from\).*\nc\.yaml:8:\d+ routes\[1\]\.plugins\.basic-auth: reads its credential from "authorization", which jwt-auth forwards/,
  'the `_` spelling too (the chain strips both); a route that turns jwt-auth off strips them too, at its own auth plugin\'s key')
})

t.test('a credential read from a header a jwt-auth anywhere in the config forwards a claim in: an error at the reader (removed on every route)', async t => {
  t.match(await problems(`plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { email: x-user-email, key: x_api_key } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: false, key-auth: {} } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", forwardClaims: { team: x-team } } } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { jwt-auth: false, key-auth: { header: X-Team } } }
  - { name: v, match: { path: /v }, upstream: up, plugins: { jwt-auth: false, key-auth: { header: x-key } } }
`), /^invalid configuration \(2 problems\):\nc\.yaml:7:\d+ routes\[0\]\.plugins\.key-auth\.header: reads its credential from "x-api-key", which jwt-auth forwards a claim in elsewhere in the config \(forwardClaims\): such headers are removed from every request on every route, so key-auth would never find one\nc\.yaml:9:\d+ routes\[2\]\.plugins\.key-auth\.header: reads its credential from "x-team", /,
  'a route\'s own jwt-auth forwarding it, another\'s, either spelling')
})

t.test('two auth plugins of a route reading the same place, no scheme telling them apart: an error at the later one\'s key, naming both', async t => {
  const first = (plugin: string) => `the first auth plugin to find a credential decides, so ${plugin} would never authenticate anyone with one there`
  t.match(await problems(`routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { key-auth: { header: authorization }, basic-auth: {} } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: X-Api-Key } ] }, key-auth: {} } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization } ] }, basic-auth: {} } }
  - { name: v, match: { path: /v }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { query: t } ] }, key-auth: { header: x-k, query: t } } }
  - { name: w, match: { path: /w }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: x-k, scheme: Basic } ] }, basic-auth: {}, key-auth: { header: x-k } } }
`), new RegExp(['^invalid configuration \\(4 problems\\):',
    `c\\.yaml:5:\\d+ routes\\[0\\]\\.plugins\\.basic-auth: reads its credential from header "authorization", as key-auth on this route does first \\(its whole value, no scheme\\): ${first('basic-auth')}; use another header, or distinct schemes`,
    'c\\.yaml:6:\\d+ routes\\[1\\]\\.plugins\\.key-auth\\.header: reads its credential from header "x-api-key", as jwt-auth on this route does first \\(its whole value, no scheme\\)',
    'c\\.yaml:7:\\d+ routes\\[2\\]\\.plugins\\.basic-auth: reads its credential from header "authorization", as jwt-auth',
    `c\\.yaml:8:\\d+ routes\\[3\\]\\.plugins\\.key-auth\\.query: reads its credential from query parameter "t", as jwt-auth on this route does first: ${first('key-auth')}; use another query parameter$`
  ].join('.*\\n')), 'distinct schemes (Bearer, Basic) tell a header apart; so does a scheme the first one reads and the later not (it gets the rest)')
  t.match(await problems(`plugins:
  basic-auth: {}
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: basic } ] } } }
`), /c\.yaml:5:\d+ plugins\.basic-auth: on route "r" \(\/r\): reads its credential from header "authorization", as jwt-auth on this route does first \(with the same scheme, basic\)/,
    'a top-level plugin that runs later: at its key, naming the route')
})

t.test('one plugin reading one place twice, or hiding a credential read from Sec-WebSocket-Protocol: an error at the key', async t => {
  t.match(await problems(`routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: x-token }, { query: access_token }, { header: X_Token, scheme: Bearer }, { query: access.token }, { header: authorization, scheme: Bearer }, { header: authorization, scheme: DPoP } ] } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", hideCredentials: true, from: [ { header: authorization, scheme: Bearer }, { header: Sec-WebSocket-Protocol } ] } } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { key-auth: { header: sec_websocket_protocol, hideCredentials: true } } }
  - { name: v, match: { path: /v }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: sec-websocket-protocol } ] } } }
  - { name: w, match: { path: /w }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: x-k, scheme: Bearer }, { header: x_k, scheme: Token } ] } } }
`), new RegExp(['^invalid configuration \\(5 problems\\):',
    'c\\.yaml:5:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.from\\[2\\]: reads where from\\[0\\] does \\(the same header without distinct schemes\\): name each place once',
    'c\\.yaml:5:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.from\\[3\\]: reads where from\\[1\\] does \\(the same query parameter\\)',
    'c\\.yaml:6:\\d+ routes\\[1\\]\\.plugins\\.jwt-auth\\.hideCredentials: would remove the whole Sec-WebSocket-Protocol header the credential is read from: the upstream could then select no subprotocol, ' +
      'and WebSocket clients abort a handshake that selects none of those they offered; leave hideCredentials off \\(the upstream selects the credential as its subprotocol\\) or read it elsewhere',
    'c\\.yaml:7:\\d+ routes\\[2\\]\\.plugins\\.key-auth\\.hideCredentials: would remove the whole Sec-WebSocket-Protocol header',
    'c\\.yaml:9:\\d+ routes\\[4\\]\\.plugins\\.jwt-auth\\.from\\[1\\]: reads where from\\[0\\] does \\(the same header in another spelling\\)'
  ].join('.*\\n')), 'a header in either spelling, a query parameter as PHP reads it; distinct schemes are two places (spelt the same); Sec-WebSocket-Protocol without hideCredentials is fine')
})

t.test('two auth plugins of a route reading one place as upstreams read it (a header in another spelling, a parameter PHP reads as the other): an error at the later one\'s key', async t => {
  t.match(await problems(`routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { header: x_api_key } ] }, key-auth: {} } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: X_Token, scheme: Bearer } ] }, key-auth: { header: x-token } } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { query: api.key } ] }, key-auth: { query: api_key } } }
  - { name: v, match: { path: /v }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: x-token, scheme: Bearer }, { query: api_keys } ] }, key-auth: { header: X-Token, query: api_key } } }
`), new RegExp(['^invalid configuration \\(3 problems\\):',
    'c\\.yaml:5:\\d+ routes\\[0\\]\\.plugins\\.key-auth\\.header: reads its credential from header "x-api-key", which jwt-auth on this route reads as "x_api_key": one header to CGI, WSGI and PHP upstreams, ' +
      'and an auth plugin removes its headers\' other spellings, so one would remove the other\'s credential; spell both the same \\(and give them distinct schemes\\), or use another header',
    'c\\.yaml:6:\\d+ routes\\[1\\]\\.plugins\\.key-auth\\.header: reads its credential from header "x-token", which jwt-auth on this route reads as "x_token"',
    'c\\.yaml:7:\\d+ routes\\[2\\]\\.plugins\\.key-auth\\.query: reads its credential from query parameter "api_key", as jwt-auth on this route does first \\(as "api\\.key", one name to PHP\\): ' +
      'the first auth plugin to find a credential decides, so key-auth would never authenticate anyone with one there; use another query parameter$'
  ].join('.*\\n')), 'distinct schemes tell apart a header spelt the same, not one in two spellings')
})

t.test('query parameters whose names differ only in case are one place (ASP.NET reads them so), cookies two (case-sensitive): an error at the later query parameter', async t => {
  t.match(await problems(`routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { cookie: session }, { cookie: SESSION }, { query: access_token }, { query: ACCESS.TOKEN } ] } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", from: [ { header: authorization, scheme: Bearer }, { query: Api_Key } ] }, key-auth: { query: api_key } } }
`), new RegExp(['^invalid configuration \\(2 problems\\):',
    'c\\.yaml:5:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.from\\[3\\]: reads where from\\[2\\] does \\(the same query parameter in another case\\): name each place once',
    'c\\.yaml:6:\\d+ routes\\[1\\]\\.plugins\\.key-auth\\.query: reads its credential from query parameter "api_key", which jwt-auth on this route reads as "Api_Key": one name to ASP\\.NET upstreams, ' +
      'and an auth plugin removes its query parameter in another case, so one would remove the other\'s credential; use another query parameter$'
  ].join('.*\\n')), 'from[1], the cookie SESSION beside session, is no problem')
})
