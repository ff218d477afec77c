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

// The later [ or { won whatever came first: a mistake at line 3 was reported at an unrelated [ at line 8.
t.test('an unclosed [ or { after the first error does not take its place', async t => {
  const found = async (text: string) => (await issues(t, text)).map(i => i.replace(/^gw\.yaml:(\d+:\d+) .*$/, '$1'))
  t.same(await found('server:\n  listen: { host: 127.0.0.1, port: 0 }\n bad: indent\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - name: r\n    methods: [GET }\n'),
    await found('server:\n  listen: { host: 127.0.0.1, port: 0 }\n bad: indent\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n'), 'line 3\'s problem, as without the [ at line 8')
  t.match((await found('server:\n  listen: { host: 127.0.0.1, port: 0 }\n bad: indent\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - name: r\n    methods: [GET }\n'))[0], /^3:/)
  t.same(await issues(t, 'routes:\n  - name: r\n    x: 1\n    a: 1\n  b: 2\nplugins: [\n'),
    ['gw.yaml:5:3 "b" is indented 2 spaces, which matches no key above it ("a" has 4, "routes" 0): check the indentation of "b"'], 'a misindented key, then a [ never closed')
  t.same(await found('server:\n  listen: 1\nupstreams\n  a: 1\nroutes: { a: 1\n'), ['3:1'], 'a key without its colon, then a { never closed')
  t.same(await found('server:\n  listen: 1\nroutes:\n  a: b: c\nx: [1, 2\n'), ['4:6'], 'a: b: c, then a [ never closed')
})

t.test('a key without its colon is named, with its key path and what to write', async t => {
  const upstreams = (users: string) => 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n' + users + 'routes: []\n'
  // yaml: "Implicit keys need to be on a single line".
  t.same(await issues(t, upstreams('  users\n    targets: [ { url: "http://127.0.0.1:3001" } ]\n')),
    ['gw.yaml:4:3 upstreams.users: "users" has no ":" after it: write users:'])
  // yaml: "Unexpected flow-map-end token", at the line's end.
  t.same(await issues(t, upstreams('  users:\n    targets [ { url: "http://127.0.0.1:3001" } ]\n')),
    ['gw.yaml:5:5 upstreams.users.targets: "targets" has no ":" after it: write targets: [...]'])
})

// A list item's "-" matched as the key: `write -: {...}` for a comma missing in the item's { } or [ ].
t.test('a list item\'s "-" is never taken for a key without its colon', async t => {
  for (const text of [HEAD + '  - { name: s, match: { path: /s } upstream: up }\n', 'consumers:\n  - [ id: a ] x\n']) {
    const found = await issues(t, text)
    t.equal(found.length, 1)
    t.notMatch(found[0], /"-"|write -:/)
  }
})

t.test('a comma missing in { } is pointed at where it goes (yaml: block collections are not allowed within flow collections)', async t => {
  t.same(await issues(t, 'server:\n  listen: { host: 127.0.0.1 port: 8080 }\nupstreams: {}\nroutes: []\n'),
    ['gw.yaml:2:28 server.listen.host: a "," is missing between the values in { }'])
})

t.test('a list item\'s first key again, as in a second item without its "- ", says to keep one or add the "- "', async t => {
  t.same(await issues(t, HEAD + '  - name: a\n    match: { path: /a }\n    upstream: up\n    name: b\n    match: { path: /b }\n    upstream: up\n'),
    ['gw.yaml:9:5 routes[0].name: key "name" appears twice in the same map (first on line 6): keep one, or, if a "- " went missing before line 9, add it to start a new item'])
  t.same(await issues(t, 'server:\n  listen: { port: 0 }\nupstreams:\n  up:\n    targets:\n      - url: "http://127.0.0.1:1"\n        url: "http://127.0.0.1:2"\nroutes: []\n'),
    ['gw.yaml:7:9 upstreams.up.targets[0].url: key "url" appears twice in the same map (first on line 6): keep one, or, if a "- " went missing before line 7, add it to start a new item'], 'in any list')
  // A genuine repeat (the item's last line repeats its name) is as likely: "keep one" is said too.
  t.same(await issues(t, HEAD + '  - name: r1\n    match: { path: /a }\n    upstream: up\n  - name: r2\n    match: { path: /b }\n    upstream: up\n    name: r2\n'),
    ['gw.yaml:12:5 routes[1].name: key "name" appears twice in the same map (first on line 9): keep one, or, if a "- " went missing before line 12, add it to start a new item'])
  // Not the item's first key: keep one, as before.
  t.same(await issues(t, HEAD + '  - name: a\n    match: { path: /a }\n    upstream: up\n    match: { path: /b }\n'),
    ['gw.yaml:9:5 routes[0].match: key "match" appears twice in the same map (first on line 7): keep one'])
})

// `-name: r` was reported as "match" indented more than "-name", to align: the "-" needs a space after it.
t.test('a list item\'s "-" with no space after it: says to put one', async t => {
  const said = 'a space is missing after the "-" of "-name": write - name: (YAML reads -name as one key)'
  t.same(await issues(t, HEAD + '  -name: r\n    match: { path: /a }\n    upstream: up\n'), [`gw.yaml:6:3 ${said}`], 'its keys below it')
  t.same(await issues(t, HEAD + '  - name: a\n    match: { path: /a }\n    upstream: up\n  -name: b\n    match: { path: /b }\n    upstream: up\n'), [`gw.yaml:9:3 ${said}`], 'after an item')
  t.same(await issues(t, HEAD + '  - name: a\n    match: { path: /a }\n    upstream: up\n  -name: b\n'), [`gw.yaml:9:3 ${said}`], 'the last line')
  // Valid YAML: routes is then a map.
  t.same(await issues(t, HEAD + '  -name: r\n'), [`gw.yaml:6:3 routes: must be an array: ${said}`], 'alone')
  t.same(await issues(t, HEAD + '  -name: r\n  match: { path: /a }\n  upstream: up\n'), [`gw.yaml:6:3 routes: must be an array: ${said}`], 'its keys beside it')
  t.same(await issues(t, 'server:\n  listen: { port: 0 }\nupstreams:\n  up:\n    targets:\n      -url: "http://127.0.0.1:1"\nroutes: []\n'),
    ['gw.yaml:6:7 upstreams.up.targets: must be an array: a space is missing after the "-" of "-url": write - url: (YAML reads -url as one key)'], 'any list')
})

// `upstream up` got yaml's "Implicit map keys need to be followed by map values", or "Implicit keys need to be on a single line".
t.test('a key and its value without the colon: says to write the colon', async t => {
  t.same(await issues(t, HEAD + '  - name: r\n    match: { path: /a }\n    upstream up\n'),
    ['gw.yaml:8:5 routes[0].upstream: "upstream" has no ":" after it: write upstream: up'], 'the last key')
  t.same(await issues(t, HEAD + '  - name: r\n    upstream up\n    match: { path: /a }\n'),
    ['gw.yaml:7:5 routes[0].upstream: "upstream" has no ":" after it: write upstream: up'], 'a key after it')
  t.same(await issues(t, HEAD + '  - upstream up\n    name: r\n    match: { path: /a }\n'),
    ['gw.yaml:6:5 routes[0].upstream: "upstream" has no ":" after it: write upstream: up'], 'an item\'s first key')
  // Never a secret's value, nor a URL's password.
  t.same(await issues(t, 'admin:\n  listen: { port: 0 }\n  token s3cr3t-t0ken\nupstreams: {}\nroutes: []\n'),
    ['gw.yaml:3:3 admin.token: "token" has no ":" after it: write token: followed by its value'])
  t.same(await issues(t, 'upstreams:\n  up:\n    targets:\n      - url http://u:pw@127.0.0.1:1\n        weight: 2\nroutes: []\n'),
    ['gw.yaml:4:9 upstreams.up.targets[0].url: "url" has no ":" after it: write url: http://[redacted]@127.0.0.1:1'])
  // A text's next line indented as its key, a word the config does not know as a key, or a value of
  // several words: yaml's message, no guess.
  for (const line of ['text here', 'upstream up here']) {
    const found = await issues(t, HEAD + `  - name: r\n    match: { path: /a }\n    upstream: up\n    description: some long\n    ${line}\n`)
    t.equal(found.length, 1)
    t.notMatch(found[0], /write|has no ":"/, line)
  }
})

// `methods: [GET POST]` got "must be an HTTP method name such as GET" alone.
t.test('a comma missing between methods in [ ]: says where', async t => {
  const route = (methods: string) => HEAD + `  - name: r\n    match:\n      path: /a\n      methods: ${methods}\n    upstream: up\n`
  t.same(await issues(t, route('[GET POST]')),
    ['gw.yaml:9:17 routes[0].match.methods[0]: must be an HTTP method name such as GET: "GET POST" is read as one item: a "," is missing between its words in [ ]: write GET, POST'])
  t.same(await issues(t, route('[get, put  post, DELETE]')),
    ['gw.yaml:9:22 routes[0].match.methods[1]: must be an HTTP method name such as GET: "put  post" is read as one item: a "," is missing between its words in [ ]: write put, post'])
  t.same(await issues(t, HEAD + '  - name: r\n    match: { path: /a }\n    upstream: up\n    plugins: { cors: { origins: ["https://a.example"], methods: [GET POST] } }\n'),
    ['gw.yaml:9:66 routes[0].plugins.cors.methods[0]: must be a method or header name: "GET POST" is read as one item: a "," is missing between its words in [ ]: write GET, POST'], 'a plugin\'s list')
  // Not a word that is no method, a quoted item (meant as one), nor a "- " item: no comma goes there.
  for (const methods of ['[GET FOO]', '["GET POST"]', '\n        - GET POST']) {
    const found = await issues(t, route(methods))
    t.equal(found.length, 1)
    t.notMatch(found[0], /","/, methods)
  }
})
