import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { formatIssue } from '../src/config/config-error.ts'
import { issues } from './helpers/config-issues.ts'
import { CLI_FROM_SOURCES, runNode } from './helpers/run-cli.ts'
import { configFile, startFromFile } from './reload/helpers.ts'

// What a newcomer writes in the first hour, used to nginx or to URLs as strings: each says how to write it.
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`
const route = (name: string, rest: string): string => `  - name: ${name}\n${rest}    upstream: users\n`

async function warnings (text: string): Promise<string[]> {
  return ((await parseConfig(text, 'gw.yaml', {})).warnings ?? []).map(formatIssue)
}

t.test('a literal path with a trailing slash is an exact match: warned of at its key, with the prefix to write', async t => {
  t.same(await warnings(HEAD + 'routes:\n' + route('c', '    match: { path: /c/ }\n') + route('v', '    match: { path: /v1/users/ }\n')), [
    'gw.yaml:7:14 routes[0].match.path: "/c/" matches only /c/ itself; for everything below it write /c/*',
    'gw.yaml:10:14 routes[1].match.path: "/v1/users/" matches only /v1/users/ itself; for everything below it write /v1/users/*'
  ])
  t.same(await warnings(HEAD + 'routes:\n' + route('root', '    match: { path: / }\n') + route('all', '    match: { path: /a/* }\n') +
    route('id', '    match: { path: /u/:id/ }\n') + route('plain', '    match: { path: /p }\n')), [], 'not /, a pattern ending in *, a path with params, or one without the slash')
  t.same(await warnings(HEAD + 'routes:\n' + route('exact', '    match: { path: /c/ }\n') + route('below', '    match: { path: /c/* }\n')), [],
    'beside a route for /c/*, the exact /c/ is deliberate')
  t.same(await warnings(HEAD + 'routes:\n' + route('index', '    match: { path: /api/ }\n') + route('one', '    match: { path: /api/:id }\n') +
    route('bare', '    match: { path: /api }\n') + route('c', '    match: { path: /c/ }\n') + route('deep', '    match: { path: /c/:id/* }\n') +
    route('d', '    match: { path: /d/ }\n') + route('d0', '    match: { path: /d }\n')), [],
    'beside a route below it (/api/:id, /c/:id/*) or the path without its slash (/d), it is deliberate too')
})

t.test('no routes: warned of, every request being 404', async t => {
  t.same(await warnings(HEAD + 'routes: []\n'), ['gw.yaml:5:1 routes: no routes: every request is answered 404'])
})

t.test('validate prints the warnings and exits 0; start logs them', async t => {
  const cf = await configFile(HEAD + 'routes:\n' + route('c', '    match: { path: /c/ }\n'))
  t.teardown(() => cf.remove())
  const run = await runNode([...CLI_FROM_SOURCES, 'validate', '-c', cf.file])
  t.equal(run.code, 0)
  t.match(run.stderr, `${cf.file}:7:14 warning: routes[0].match.path: "/c/" matches only /c/ itself; for everything below it write /c/*`)
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  t.match(gw.logs.find(l => l.path === 'routes[0].match.path'), { level: 40, file: cf.file, line: 7, col: 14, msg: '"/c/" matches only /c/ itself; for everything below it write /c/*' })
})

t.test('a target written as its URL alone, a listen as its port alone: how to write them', async t => {
  t.same(await issues(t, `server:
  listen: 8080
admin:
  listen: "9090"
upstreams:
  users: { targets: [ "http://127.0.0.1:3001", "http://user:pa55word@127.0.0.1:3002" ] }
routes: []
`), [
    'gw.yaml:2:11 server.listen: must be an object: write { port: 8080 }',
    'gw.yaml:4:11 admin.listen: must be an object: write { port: 9090 }',
    'gw.yaml:6:23 upstreams.users.targets[0]: must be an object: write { url: "http://127.0.0.1:3001" }',
    'gw.yaml:6:48 upstreams.users.targets[1]: must be an object: write { url: "http://[redacted]@127.0.0.1:3002" } (without its user and password, which would not be sent: set an Authorization header with the request-headers plugin instead)'
  ])
})

t.test('a listen not a port, and a value from ${VAR}: no port suggested, or the ${VAR} as written', async t => {
  t.same(await issues(t, `server:
  listen: 99999
admin:
  listen: 8080.5
upstreams: {}
routes: []
`), ['gw.yaml:2:11 server.listen: must be an object', 'gw.yaml:4:11 admin.listen: must be an object'])
  const env = { PORT: '8080', UP: 'http://user:pa55word@127.0.0.1:3001' }
  const found = await issues(t, `server:
  listen: \${PORT}
admin:
  listen: { port: "\${PORT}" }
upstreams:
  users: { targets: [ "\${UP}" ] }
routes: []
`, env)
  t.same(found, [
    'gw.yaml:2:11 server.listen: must be an object: write { port: "${PORT}" } (got "8080" from "${PORT}")',
    'gw.yaml:6:23 upstreams.users.targets[0]: must be an object: write { url: "${UP}" } (without its user and password, which would not be sent: set an Authorization header with the request-headers plugin instead) (got "http://[redacted]@127.0.0.1:3001" from "${UP}")'
  ], 'the port as suggested loads')
  t.notMatch(found.join('\n'), /pa55word/)
})

t.test('a match key beside a route\'s name goes under match, not a misspelt "match"', async t => {
  t.same(await issues(t, HEAD + 'routes:\n' + route('a', '    path: /a/*\n') + route('b', `    match: { path: /b }
    methods: [GET]
    host: api.example.com
    headers: { x-tenant: a }
`)), [
    'gw.yaml:7:5 routes[0].path: unknown key "path" (it goes under "match": match: { path: ... })',
    'gw.yaml:11:5 routes[1].methods: unknown key "methods" (it goes under "match": match: { path: ..., methods: ... })',
    'gw.yaml:12:5 routes[1].host: unknown key "host" (it goes under "match": match: { path: ..., host: ... })',
    'gw.yaml:13:5 routes[1].headers: unknown key "headers" (it goes under "match": match: { path: ..., headers: ... })'
  ])
  t.same(await issues(t, HEAD + 'routes:\n' + route('a', '    match: { path: /a }\n    mach: { path: /b }\n')),
    ['gw.yaml:8:5 routes[0].mach: unknown key "mach" (did you mean "match"?)'], 'a misspelt key is still one')
})

t.test('a stripPrefix with a trailing slash: the prefix it would be without it', async t => {
  t.same(await issues(t, HEAD + 'routes:\n' + route('o', '    match: { path: /orders/* }\n    stripPrefix: /orders/\n') +
    route('p', '    match: { path: /p/* }\n    stripPrefix: /q/\n')), [
    'gw.yaml:8:18 routes[0].stripPrefix: "/orders/" is not a prefix of every path this route matches (/orders/*) (write /orders)',
    'gw.yaml:12:18 routes[1].stripPrefix: "/q/" is not a prefix of every path this route matches (/p/*)'
  ])
})
