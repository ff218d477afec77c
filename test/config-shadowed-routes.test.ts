import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'
import { runCliHere } from './helpers/run-cli.ts'

// Lines 1-5; routes written after it start on line 6.
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
`
const takes = (by: number, name: string, wider: string) => `routes[${by}] ("${name}") takes every request this route matches, so it could never be used: ` +
  `the same path and precedence, declared first, and its ${wider} include these; declare this route before routes[${by}] (which keeps the requests this one does not match)`

/** The route `portcullis explain` gives a request (`-H` for its headers, the host among them). */
async function explain (file: string, method: string, path: string, ...headers: string[]): Promise<string | undefined> {
  const run = await runCliHere('explain', '-c', file, ...headers.flatMap(h => ['-H', h]), method, path)
  return /^ {2}route {12}(\S+)/m.exec(run.stdout)?.[1]
}

t.test('a route an earlier one of the same precedence always takes is an error at its match, naming that one', async t => {
  t.same(await issues(t, HEAD + `  - { name: f1, match: { path: /t/*, methods: [GET, POST] }, upstream: users }
  - { name: f2, match: { path: /t/*, methods: [GET] }, upstream: users }
  - { name: h1, match: { host: [a.com, b.com], path: /u/* }, upstream: users }
  - { name: h2, match: { host: A.com., path: /u/* }, upstream: users }
  - { name: w1, match: { host: ["*.a.com", x.b.com], path: "/p/:id", methods: [GET, POST], headers: { X-V: "2" } }, upstream: users }
  - { name: w2, match: { host: "*.A.com.", path: "/p/:uid", methods: [get], headers: { x-v: "2" } }, upstream: users }
  - { name: g1, match: { path: /g, methods: [GET] }, upstream: users }
  - { name: g2, match: { path: /g, methods: [HEAD] }, upstream: users }
`), [
    `gw.yaml:7:24 routes[1].match: ${takes(0, 'f1', 'methods GET, POST')}`,
    `gw.yaml:9:24 routes[3].match: ${takes(2, 'h1', 'hosts a.com, b.com')}`,
    `gw.yaml:11:24 routes[5].match: ${takes(4, 'w1', 'methods GET, POST and hosts *.a.com, x.b.com')}`,
    `gw.yaml:13:24 routes[7].match: ${takes(6, 'g1', 'methods GET')}`
  ])
})

t.test('the fix the error gives works: declared first, the narrower route takes its requests, the other the rest', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'portcullis-shadowed-')), 'gateway.yaml')
  writeFileSync(file, HEAD + `  - { name: f2, match: { path: /t/*, methods: [GET] }, upstream: users }
  - { name: f1, match: { path: /t/*, methods: [GET, POST] }, upstream: users }
  - { name: h2, match: { host: a.com, path: /u/* }, upstream: users }
  - { name: h1, match: { host: [a.com, b.com], path: /u/* }, upstream: users }
`)
  t.equal(await explain(file, 'GET', '/t/x'), 'f2')
  t.equal(await explain(file, 'POST', '/t/x'), 'f1')
  t.equal(await explain(file, 'GET', '/u/x', 'host: a.com'), 'h2')
  t.equal(await explain(file, 'GET', '/u/x', 'host: b.com'), 'h1')
})

t.test('overlapping routes the later of which still takes some requests pass', async t => {
  const text = HEAD + `  - { name: m1, match: { path: /m/*, methods: [GET] }, upstream: users }
  - { name: m2, match: { path: /m/*, methods: [GET, POST] }, upstream: users }
  - { name: n1, match: { path: /n/* }, upstream: users }
  - { name: n2, match: { path: /n/*, methods: [GET] }, upstream: users }
  - { name: e1, match: { path: /e/*, methods: [GET, POST] }, upstream: users }
  - { name: e2, match: { path: /e/*, methods: [GET], headers: { x-v: "2" } }, upstream: users }
  - { name: h1, match: { host: a.com, path: /h/* }, upstream: users }
  - { name: h2, match: { host: [a.com, b.com], path: /h/* }, upstream: users }
  - { name: w1, match: { host: "*.a.com", path: /w/*, methods: [GET, POST] }, upstream: users }
  - { name: w2, match: { host: x.a.com, path: /w/*, methods: [GET] }, upstream: users }
  - { name: w3, match: { host: "*.x.a.com", path: /w/*, methods: [GET] }, upstream: users }
  - { name: a1, match: { path: /a/*, methods: [GET, POST] }, upstream: users }
  - { name: a2, match: { host: a.com, path: /a/*, methods: [GET] }, upstream: users }
  - { name: p1, match: { path: /p/*, methods: [GET, POST] }, upstream: users }
  - { name: p2, match: { path: "/p/:id", methods: [GET] }, upstream: users }
  - { name: c1, match: { path: "/v1/things:batchGet", methods: [POST] }, upstream: users }
  - { name: c2, match: { path: "/v1/things:batchDelete", methods: [POST] }, upstream: users }
`
  await parseConfig(text, 'gw.yaml', {})
  const file = join(mkdtempSync(join(tmpdir(), 'portcullis-shadowed-')), 'gateway.yaml')
  writeFileSync(file, text)
  const rows: Array<[string, string, string[], string]> = [
    ['POST', '/m/x', [], 'm2'], // more methods: the rest of them
    ['GET', '/n/x', [], 'n2'], // routes with methods come first
    ['GET', '/e/x', ['x-v: 2'], 'e2'], // more header conditions come first
    ['GET', '/h/x', ['host: b.com'], 'h2'], // more hosts: the rest of them
    ['GET', '/w/x', ['host: x.a.com'], 'w2'], // an exact host before a wildcard over it
    ['GET', '/w/x', ['host: y.x.a.com'], 'w3'], // a longer wildcard before a shorter one
    ['GET', '/a/x', ['host: a.com'], 'a2'], // a host before none
    ['GET', '/p/x', [], 'p2'], // params before a prefix
    ['POST', '/v1/things:batchDelete', [], 'c2'] // a `:` inside a segment is text, not a param
  ]
  for (const [method, path, headers, route] of rows) t.equal(await explain(file, method, path, ...headers), route, `${method} ${path} ${headers.join(' ')}`)
})
