import t from 'tap'
import { issues } from './helpers/config-issues.ts'

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
`

t.test('a value starting with * is an alias: the problem names its key and says to quote it', async t => {
  t.same(await issues(t, HEAD + '  - { name: r, match: { path: * }, upstream: up }\n'),
    ['gw.yaml:6:31 routes[0].match.path: a value starting with * is an alias, and * alone names none: quote it if it is text ("*")'])
  t.same(await issues(t, HEAD + '  - name: r\n    match:\n      path: */api\n    upstream: up\n'),
    ['gw.yaml:8:13 routes[0].match.path: alias */api names no anchor: a value starting with * is an alias; quote it if it is text ("*/api")'])
})

t.test('a { or [ never closed is pointed at, not the line after it', async t => {
  t.same(await issues(t, HEAD + '  - name: r\n    match: { path: /api/*\n    upstream: up\n'),
    ['gw.yaml:7:12 routes[0].match: this { is never closed: close it with } (YAML reads on until it finds one, and the next line cannot be inside it)'])
  // Closed braces and quoted ones before it are not it; nor is one in a comment.
  t.same(await issues(t, HEAD + '  - name: r  # { a comment\n    match: { headers: { x-a: "}{" }, methods: [GET,\n      POST], path: /a\n    upstream: up\n'),
    ['gw.yaml:7:12 routes[0].match: this { is never closed: close it with } (YAML reads on until it finds one, and the next line cannot be inside it)'])
  t.same(await issues(t, HEAD + '  - name: r\n    match: { path: /a, methods: [GET, POST }\n    upstream: up\n'),
    ['gw.yaml:7:33 routes[0].match.methods: this [ is never closed: close it with ] (YAML reads on until it finds one, and the next line cannot be inside it)'])
})

// What follows an unclosed [ or { is read inside it: a line there yaml fails on first (a nested map)
// was reported as indented more than the key, whose value then seemed to be the mistake.
t.test('a key\'s value opening a [ or { never closed is the mistake, not the line after it that yaml fails on first', async t => {
  for (const [open, close] of [['[', ']'], ['{', '}']] as const) {
    t.same(await issues(t, `server: ${open}\n  bad: yaml: : :\n`),
      [`gw.yaml:1:9 server: this ${open} is never closed: close it with ${close} (YAML reads on until it finds one, and the next line cannot be inside it)`], open)
  }
  t.same(await issues(t, 'server: [\n  listen\n'),
    ['gw.yaml:1:9 server: this [ is never closed: close it with ] (YAML reads on until it finds one, and the next line cannot be inside it)'], 'as when it is yaml\'s first error')
})
