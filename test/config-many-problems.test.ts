import t from 'tap'
import { issues } from './helpers/config-issues.ts'

// A generated config can repeat one mistake thousands of times: each is still reported, in file
// order, and a dedented key among them is still one problem (that check once compared every
// problem with every other: 20,000 of them took 50 s).
t.test('2,000 consumers with groups: left empty: 2,000 problems, a dedented key among them still merged', async t => {
  let text = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
consumers:
`
  for (let i = 0; i < 2000; i++) text += i === 1000 ? `  - id: c${i}\n    metadata:\n    tier: gold\n` : `  - id: c${i}\n    groups:\n`
  const found = await issues(t, text)
  t.equal(found.length, 2000)
  t.same(found.slice(0, 2), [
    'gw.yaml:8:12 consumers[0].groups: has no value',
    'gw.yaml:10:12 consumers[1].groups: has no value'
  ])
  t.same(found.slice(999, 1002), [
    'gw.yaml:2006:12 consumers[999].groups: has no value',
    'gw.yaml:2009:5 consumers[1000].tier: "tier" is outside "metadata", which it seems to belong to: check the indentation of "tier"',
    'gw.yaml:2011:12 consumers[1001].groups: has no value'
  ])
  t.equal(found.at(-1), 'gw.yaml:4007:12 consumers[1999].groups: has no value')
})

// Each unknown name was compared with every upstream's: thousands of each stalled a reload (and
// the traffic it serves) for seconds. A word is measured once, and only the first 100 get a hint.
t.test('300 routes naming unknown upstreams: each reported, a hint for the first 100 words only', async t => {
  let text = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n'
  for (let i = 0; i < 300; i++) text += `  orders-${i}: { targets: [ { url: "http://127.0.0.1:1" } ] }\n`
  text += 'routes:\n'
  for (let i = 0; i < 300; i++) text += `  - { name: r${i}, match: { path: /r${i} }, upstream: ${i === 299 ? 'order-0' : `order-${i}`} }\n`
  const found = await issues(t, text)
  t.equal(found.length, 300)
  // The first 20 names in order, not all 300.
  const known = '; there are: orders-0, orders-1, orders-10, orders-100, orders-101, orders-102, orders-103, orders-104, orders-105, ' +
    'orders-106, orders-107, orders-108, orders-109, orders-11, orders-110, orders-111, orders-112, orders-113, orders-114, orders-115 and 280 more'
  t.equal(found[0], `gw.yaml:305:49 routes[0].upstream: unknown upstream "order-0" (did you mean "orders-0"?)${known}`)
  t.equal(found[99], `gw.yaml:404:51 routes[99].upstream: unknown upstream "order-99" (did you mean "orders-99"?)${known}`)
  t.equal(found[100], `gw.yaml:405:53 routes[100].upstream: unknown upstream "order-100"${known}`)
  t.equal(found[299], `gw.yaml:604:53 routes[299].upstream: unknown upstream "order-0" (did you mean "orders-0"?)${known}`, 'a word met before keeps its hint')
})

// One schema problem in a route (a name, a path) left the rest of it unchecked; a problem in a
// section no check reads (metrics) or in one loadPlugins entry stopped before every check.
t.test('a route the schema refuses still has its upstream and plugins checked', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  backend: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: my route
    match: { path: api/* }
    upstream: backnd
    plugins:
      corz: {}
      request-size: { maxUrl: 0 }
  - name: other
    match: { path: /x }
    upstream: nope
    plugins: [ cors ]
`), [
    'gw.yaml:6:11 routes[0].name: must be letters, digits, _ . - (starting with a letter or digit)',
    'gw.yaml:7:20 routes[0].match.path: must start with /',
    'gw.yaml:8:15 routes[0].upstream: unknown upstream "backnd" (did you mean "backend"?); there are: backend',
    'gw.yaml:10:7 routes[0].plugins.corz: unknown plugin "corz" (did you mean "cors"?); there are: acl, basic-auth, cache, compress, cors, ip-filter, jwt-auth, ' +
      'key-auth, opentelemetry, rate-limit, redirect, request-headers, request-size, request-termination, response-headers (your own are loaded with loadPlugins)',
    'gw.yaml:11:31 routes[0].plugins.request-size.maxUrl: must be >= 1',
    'gw.yaml:14:15 routes[1].upstream: unknown upstream "nope"; there are: backend',
    'gw.yaml:15:14 routes[1].plugins: must be an object'
  ])
})

t.test('a problem in metrics or in a loadPlugins entry does not hide the others', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
metrics: { requests: yes }
loadPlugins: [ "" ]
upstreams:
  backend: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: backnd }
`), [
    'gw.yaml:3:22 metrics.requests: must be a boolean',
    'gw.yaml:4:16 loadPlugins[0]: must NOT have fewer than 1 characters',
    'gw.yaml:8:47 routes[0].upstream: unknown upstream "backnd" (did you mean "backend"?); there are: backend'
  ])
  // Not a list: which plugins exist is not known, so the routes' plugins cannot be checked.
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: { a: ./a.ts }
upstreams:
  backend: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: backnd }
`), ['gw.yaml:3:14 loadPlugins: must be an array: start each item with "- ", or put the value inside [ ]'])
})
