import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCliHere } from './helpers/run-cli.ts'

const dir = mkdtempSync(join(tmpdir(), 'portcullis-explain-'))
const file = join(dir, 'gateway.yaml')
writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: "/users/:id" }, upstream: users }
  - { name: api, match: { host: api.example.com, path: /* }, upstream: users }
`)

t.test('explain takes a bare path: any host, so routes without match.host', async t => {
  const run = await runCliHere('explain', '-c', file, 'GET', '/users/1')
  t.equal(run.code, 0)
  t.same(run.stdout.trimEnd().split('\n').slice(0, 3), [
    'GET /users/1',
    `  route            users (routes[0] in ${file})`,
    '  params           {"id":"1"}'
  ])
})

t.test('explain with a bare path takes the host from -H', async t => {
  const run = await runCliHere('explain', '-c', file, '-H', 'Host: api.example.com', 'GET', '/orders')
  t.equal(run.code, 0)
  t.match(run.stdout, /^ {2}route {12}api \(routes\[1\]/m)
})

t.test('explain exits 1 when no route matches, and 2 for something that is neither a URL nor a path', async t => {
  const none = await runCliHere('explain', '-c', file, 'GET', '/orders')
  t.equal(none.code, 1)
  t.match(none.stdout, /→ 404 no_route/)
  const bad = await runCliHere('explain', '-c', file, 'GET', 'users/1')
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^expected METHOD and an http\(s\) URL or a path starting with \//)
})

t.test('explain refuses what the gateway would answer 400, and what no client can send', async t => {
  for (const url of ['http://[bad/api', 'http://a@api.example.com/x', 'http:///users/1']) {
    const run = await runCliHere('explain', '-c', file, 'GET', url)
    t.equal(run.code, 1, url)
    t.match(run.stdout, /^ {2}→ 400 bad_host: ".*" is not a host name/m)
    t.notMatch(run.stdout, /route {12}/, 'no route is reported')
  }
  const header = await runCliHere('explain', '-c', file, '-H', 'Host: a b', 'GET', '/users/1')
  t.equal(header.code, 1, 'a bad Host from -H too')
  t.match(header.stdout, /→ 400 bad_host: "a b"/)
  for (const method of ['GE T', 'GET/', '', 'GÉT']) {
    const run = await runCliHere('explain', '-c', file, method, '/users/1')
    t.equal(run.code, 2, JSON.stringify(method))
    t.equal(run.stderr, `"${method}" is not an HTTP method: a method is letters, digits and !#$%&'*+-.^_\`|~ only\n`)
  }
  // Escapes that are not UTF-8: 400 as the gateway answers, even where a catch-all route would match.
  for (const url of ['/caf%E9', 'http://api.example.com/a%80', 'http://api.example.com/%C0%AF']) {
    const run = await runCliHere('explain', '-c', file, 'GET', url)
    t.same([run.code, run.stdout.trimEnd().split('\n')[1]], [1, '  → 400 bad_path: the path has an encoded slash or backslash, NUL, a semicolon, a malformed escape, or escapes that do not decode as UTF-8'], url)
  }
  const spaced = await runCliHere('explain', '-c', file, 'GET', '/users/1 2')
  t.equal(spaced.code, 2)
  t.match(spaced.stderr, /^"\/users\/1 2" cannot be sent as a request target/)
  t.equal((await runCliHere('explain', '-c', file, 'M-SEARCH', '/users/1')).code, 0, 'any method Node parses')
  // Node's HTTP parser answers 400 to a method it does not know, or one not in upper case.
  const lower = await runCliHere('explain', '-c', file, 'get', '/users/1')
  t.same([lower.code, lower.stdout.trimEnd().split('\n')], [1, ['get /users/1', '  → 400 bad_request: "get" is not a method the gateway\'s HTTP parser knows (methods are case-sensitive: GET)']])
  const unknown = await runCliHere('explain', '-c', file, 'FROB', '/users/1')
  t.same([unknown.code, unknown.stdout.trimEnd().split('\n')[1]], [1, '  → 400 bad_request: "FROB" is not a method the gateway\'s HTTP parser knows'])
})

t.test('explain answers as the gateway does where it refuses a request a route matches: TRACE, CONNECT, two Hosts, raw UTF-8; an upper-case scheme routes', async t => {
  const lines = async (...args: string[]) => {
    const run = await runCliHere('explain', '-c', file, ...args)
    return [run.code, ...run.stdout.trimEnd().split('\n').slice(1, 2)]
  }
  t.same(await lines('TRACE', '/users/1'), [1, '  → 405 method_not_allowed: route users matches, but TRACE is answered only by a route whose match.methods names it'])
  for (const target of ['/users/1', 'api.example.com:443']) {
    t.same(await lines('CONNECT', target), [1, '  → 501 not_implemented: the gateway does not open CONNECT tunnels'], target)
  }
  t.same(await lines('-H', 'host: api.example.com', '-H', 'Host: other.example', 'GET', '/orders'),
    [1, '  → 400 bad_host: the Host header (or the target\'s authority) is missing, repeated or not a host name with an optional port'], 'two Host fields')
  t.same(await lines('-H', 'transfer-encoding: gzip', 'POST', '/users/1'),
    [1, '  → 501 unsupported_transfer_coding: the request uses a transfer coding the gateway does not implement (only chunked)'])
  for (const url of ['/users/café', 'http://api.example.com/café']) {
    t.same(await lines('GET', url), [1, `  → 400 bad_request: the gateway's HTTP parser refuses bytes outside ASCII in the request target: percent-encode them (${url.replace('é', '%C3%A9')})`], url)
  }
  for (const url of ['HTTP://api.example.com/orders', 'Https://API.example.com/orders']) {
    t.same(await lines('GET', url), [0, `  route            api (routes[1] in ${file})`], url)
  }
})
