import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runCli, runCliHere } from './helpers/run-cli.ts'
import { spawnCli } from './helpers/cli.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'

// The CLI runs in this process (runCliHere); once as a real process (runCli), to see a real exit code and stderr.

const GOOD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
  orders: { targets: [ { url: "http://127.0.0.1:3002" }, { url: "http://127.0.0.1:3003" } ] }
routes:
  - name: users
    match: { path: /users/*, methods: [GET, POST] }
    upstream: users
    stripPrefix: /users
  - name: user-orders
    match: { path: "/users/:id/orders/*", methods: [GET] }
    upstream: orders
    rewrite: "/v2/orders/:id/*"
    plugins:
      response-headers: { set: { x-frame-options: DENY } }
      request-headers: { set: { x-gateway: portcullis } }
  - name: me
    match: { path: /users/me }
    upstream: users
  - name: tenant
    match: { host: api.example.com, path: /*, headers: { x-tenant: acme } }
    upstream: users
  - name: wild
    match: { host: "*.example.com", path: /*, methods: [GET] }
    upstream: orders
  - name: other
    match: { host: other.test, path: /* }
    upstream: orders
`

const BAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: user
  - name: b
    match: { path: /b }
    upstream: users
    plugins: { request-headers: { sett: {} } }
`

// Valid by the plugins' schemas, not by their checks: these once passed validate and failed start.
const BAD_PLUGIN_VALUES = `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - { id: guest }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a/:id }
    upstream: users
    plugins:
      ip-filter: { deny: [10.0.0.0/8, 10.0.0.0/33] }
      cors: { origins: ["/(unclosed/"] }
      redirect: { to: "/b/:ident" }
      key-auth: { anonymous: gest }
      rate-limit: { limits: [ { name: x, requests: 10, window: 1s }, { name: x, requests: 100, window: 1m } ] }
`

const dir = t.testdir({ 'good.yaml': GOOD, 'bad.yaml': BAD, 'bad-plugin-values.yaml': BAD_PLUGIN_VALUES })
const good = join(dir, 'good.yaml')
const bad = join(dir, 'bad.yaml')

t.test('validate: exit 0 for a valid file, 1 with file:line:col lines for an invalid one', async t => {
  const ok = await runCliHere('validate', '-c', good)
  t.same([ok.code, ok.stdout.trim(), ok.stderr], [0, `${good}: valid (6 routes, 2 upstreams)`, ''])
  const one = join(dir, 'one.yaml')
  writeFileSync(one, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: /users/* }, upstream: users }
`)
  const single = await runCliHere('validate', '-c', one)
  t.same([single.code, single.stdout.trim(), single.stderr], [0, `${one}: valid (1 route, 1 upstream)`, ''], 'singular for one')

  const ko = await runCli('validate', '-c', bad)
  t.equal(ko.code, 1)
  t.equal(ko.stdout, '')
  const lines = ko.stderr.trim().split('\n')
  t.same(lines, [
    'invalid configuration (2 problems):',
    `${bad}:8:15 routes[0].upstream: unknown upstream "user" (did you mean "users"?); there are: users`,
    `${bad}:12:35 routes[1].plugins.request-headers.sett: unknown key "sett" (did you mean "set"?)`
  ])
})

t.test('validate: what plugins check beyond their schemas (addresses, regular expressions, templates, consumers named, limit names), at file:line:col', async t => {
  const file = join(dir, 'bad-plugin-values.yaml')
  const ko = await runCliHere('validate', '-c', file)
  t.equal(ko.code, 1)
  t.same(ko.stderr.trim().split('\n'), [
    'invalid configuration (5 problems):',
    `${file}:12:39 routes[0].plugins.ip-filter.deny[1]: "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR range`,
    `${file}:13:25 routes[0].plugins.cors.origins[0]: Invalid regular expression: /(unclosed/: Unterminated group`,
    `${file}:14:23 routes[0].plugins.redirect.to: uses ":ident", which the route's match.path does not define (a literal ":" or "*" is written "\\:" or "\\*")`,
    `${file}:15:30 routes[0].plugins.key-auth.anonymous: unknown consumer "gest" (did you mean "guest"?)`,
    `${file}:16:78 routes[0].plugins.rate-limit.limits[1].name: limits[0] is named "x" too: give each limit its own name`
  ])
})

t.test('a word a command does not take is a usage error (exit 2), not ignored in favour of the default file', async t => {
  const file = await runCliHere('validate', bad)
  t.same([file.code, file.stdout, file.stderr.split('\n')[0]], [2, '', `unexpected argument "${bad}" (did you mean -c ${bad}?)`])
  t.match(file.stderr, /^Usage: portcullis validate/m, 'with the usage')
  for (const argv of [['start', bad], ['routes', bad], ['schema', 'extra'], ['healthcheck', 'extra'], ['demo', bad],
    ['explain', '-c', good, 'GET', '/users/1', 'extra'], ['plugin', 'new', 'x', 'extra']]) {
    const run = await runCliHere(...argv)
    t.equal(run.code, 2, argv.join(' '))
    t.match(run.stderr, /^unexpected argument "/, argv.join(' '))
  }
  const wordy = await runCliHere('routes', 'everything')
  t.equal(wordy.stderr.split('\n')[0], 'unexpected argument "everything"', 'no -c hint for a word that is no file')
  const noConfig = await runCliHere('schema', '-c', good)
  t.equal(noConfig.code, 2)
  t.match(noConfig.stderr, /^unknown option "-c"\n/, 'schema reads no config: -c is no option of it')
})

t.test('routes: the table in precedence order', async t => {
  const { code, stdout } = await runCliHere('routes', '-c', good)
  t.equal(code, 0)
  const [head = '', ...rows] = stdout.trim().split('\n')
  t.same(head.split(/\s{2,}/), ['ROUTE', 'HOST', 'PATH', 'METHODS', 'HEADERS', 'UPSTREAM', 'PLUGINS'])
  t.same(rows.map(r => r.split(/\s{2,}/)), [
    ['tenant', 'api.example.com', '/*', 'ANY', 'x-tenant: acme', 'users (http://127.0.0.1:3001)', '-'],
    ['other', 'other.test', '/*', 'ANY', '-', 'orders (http://127.0.0.1:3002, http://127.0.0.1:3003)', '-'],
    ['wild', '*.example.com', '/*', 'GET,HEAD', '-', 'orders (http://127.0.0.1:3002, http://127.0.0.1:3003)', '-'],
    ['me', '*', '/users/me', 'ANY', '-', 'users (http://127.0.0.1:3001)', '-'],
    ['user-orders', '*', '/users/:id/orders/*', 'GET,HEAD', '-', 'orders (http://127.0.0.1:3002, http://127.0.0.1:3003)', 'response-headers (5000) → request-headers (800)'],
    ['users', '*', '/users/*', 'GET,POST,HEAD', '-', 'users (http://127.0.0.1:3001)', '-']
  ])
})

t.test('explain: route, plugins in order, upstream and forwarded path', async t => {
  const { code, stdout } = await runCliHere('explain', '-c', good, 'GET', 'http://localhost:8080/users/7/orders/../orders/%39?x=1')
  t.equal(code, 0)
  t.same(stdout.trimEnd().split('\n'), [
    'GET http://localhost:8080/users/7/orders/../orders/%39?x=1',
    '  normalized path  /users/7/orders/9',
    `  route            user-orders (routes[1] in ${good})`,
    '  params           {"id":"7","*":"9"}',
    '  plugins          response-headers (5000) → request-headers (800)',
    '  upstream         orders: http://127.0.0.1:3002, http://127.0.0.1:3003',
    '  forwarded as     GET /v2/orders/7/9?x=1 (Host: 127.0.0.1:3002)'
  ])

  const tenant = await runCliHere('explain', '-c', good, '-H', 'X-Tenant: acme', 'DELETE', 'http://API.example.com/x')
  t.match(tenant.stdout, /route +tenant \(routes\[3\]/)
  t.match(tenant.stdout, /forwarded as +DELETE \/x \(Host: 127\.0\.0\.1:3001\)/)
})

t.test('explain: when nothing matches, why for each route, and exit 1; 405 with the methods routes of the path take', async t => {
  const { code, stdout } = await runCliHere('explain', '-c', good, 'DELETE', 'http://api.example.com/users/7/orders/1')
  t.equal(code, 1, 'exit 1: no route, so scripts can tell')
  t.same(stdout.trimEnd().split('\n'), [
    'DELETE http://api.example.com/users/7/orders/1',
    '  → 405 method_not_allowed: routes take GET, HEAD, POST for this path (Allow). Why each route does not match:',
    '    tenant               header x-tenant is not "acme"',
    '    other                host "api.example.com" is not other.test',
    '    wild                 method DELETE is not one of GET, HEAD',
    '    me                   path /users/7/orders/1 does not match /users/me',
    '    user-orders          method DELETE is not one of GET, HEAD',
    '    users                method DELETE is not one of GET, POST, HEAD'
  ])
})

t.test('explain: a malformed -H is a usage error (exit 2)', async t => {
  const badHeader = await runCliHere('explain', '-c', good, '-H', 'x-tenant', 'GET', 'http://localhost/')
  t.same([badHeader.code, badHeader.stderr.split('\n')[0]], [2, '-H expects "name: value", got "x-tenant"'])
})

t.test('validate and routes exit once done, though a loaded plugin module keeps a timer running', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const plugin = writeUserPlugin(dir, 'ticking', 500, '{}')
  writeFileSync(plugin, readFileSync(plugin, 'utf8') + 'setInterval(() => {}, 60_000)\n')
  const file = join(dir, 'gw.yaml')
  writeFileSync(file, 'loadPlugins: [ ./ticking.ts ]\n' + GOOD)
  for (const command of ['validate', 'routes']) {
    const cli = spawnCli([command, '-c', file])
    // At most (unref'd: not holding this process once the CLI exited): the plugin's timer would keep it
    // running for ever, and a start alone takes seconds (10 s on a loaded machine).
    const code = await Promise.race([cli.exited, sleep(50_000, 'still running', { ref: false })])
    if (code === 'still running') { cli.child.kill('SIGKILL'); await cli.exited }
    t.equal(code, 0, `${command} exits 0 (stderr: ${cli.stderr()})`)
    t.match(cli.lines.map(l => l.text).join('\n'), command === 'validate' ? /: valid \(6 routes/ : /^ROUTE/, `${command} printed all it had to`)
  }
})

t.test('--help for the CLI and every command exits 0', async t => {
  const main = await runCliHere('--help')
  t.equal(main.code, 0)
  t.match(main.stdout, /^Usage: portcullis <command> \[options\]$/m)
  const commands = [...main.stdout.matchAll(/^ {2}([\w-]+) {2,}\S/gm)].map(m => m[1] as string)
  t.same(commands, ['start', 'validate', 'routes', 'explain', 'schema', 'healthcheck', 'plugin', 'hash-password', 'demo'], 'every command is listed')
  for (const command of commands) {
    const h = await runCliHere(command, '--help')
    t.equal(h.code, 0, `${command} --help`)
    t.match(h.stdout, new RegExp(`^Usage: portcullis ${command}( |$)`, 'm'), `${command} --help prints its usage`)
  }
})

t.test('unknown command: exit 2 with a did-you-mean', async t => {
  const typo = await runCliHere('valdate', '-c', good)
  t.equal(typo.code, 2)
  t.match(typo.stderr, /^portcullis: unknown command "valdate" \(did you mean "validate"\?\)/)
  // Names of Object.prototype properties once passed for commands: a TypeError and a stack trace.
  for (const name of ['constructor', 'toString']) {
    const odd = await runCliHere(name)
    t.equal(odd.code, 2, name)
    t.match(odd.stderr, new RegExp(`^portcullis: unknown command "${name}"`), name)
  }
})

t.test('-c=FILE is read as --config=FILE is (it once looked for a file named "=FILE"); -H=value too', async t => {
  const run = await runCliHere('validate', `-c=${good}`)
  t.same([run.code, run.stdout], [0, `${good}: valid (6 routes, 2 upstreams)\n`])
  const explained = await runCliHere('explain', `-c=${good}`, '-H=X-Tenant: acme', 'GET', 'http://api.example.com/x')
  t.match(explained.stdout, /route +tenant \(routes\[3\]/)
})

t.test('healthcheck with a state file that is not one start writes: one line, exit 1 (it once threw a TypeError or Invalid URL)', async t => {
  const file = join(dir, 'state.json')
  const saved = process.env.PORTCULLIS_STATE_FILE
  process.env.PORTCULLIS_STATE_FILE = file
  t.teardown(() => { if (saved === undefined) delete process.env.PORTCULLIS_STATE_FILE; else process.env.PORTCULLIS_STATE_FILE = saved })
  for (const text of ['null', '{}', '{"url":"garbage"}', '[1]', '{"url":"http://127.0.0.1:1","adminUrl":"::"}']) {
    writeFileSync(file, text)
    const run = await runCliHere('healthcheck')
    t.same([run.code, run.stderr], [1, `${file}: not a state file "portcullis start" writes (is PORTCULLIS_STATE_FILE another file?)\n`], text)
  }
})

t.test('plugin new with a --dir that is a file: one line, exit 1 (it once printed an ENOTDIR stack trace)', async t => {
  const file = join(dir, 'a-file')
  writeFileSync(file, '')
  const run = await runCliHere('plugin', 'new', 'stamp', '--dir', file)
  t.same([run.code, run.stderr], [1, `cannot write ${join(file, 'stamp')}: a part of that path is a file, not a folder (check --dir)\n`])
})
