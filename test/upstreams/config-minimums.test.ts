import t from 'tap'
import { issues } from '../helpers/config-issues.ts'

const HEAD = `server: { listen: { host: 127.0.0.1, port: 0 } }
routes: []
upstreams:
`

t.test('dnsInterval: less than 1s is refused (0 looked the name up some 900 times a second); 1s is not', async t => {
  t.same(await issues(t, HEAD + `  a:
    targets:
      - { url: "http://a.test:1", resolve: dns, dnsInterval: 0 }
      - { url: "http://b.test:1", resolve: dns, dnsInterval: 0.4ms }
      - { url: "http://c.test:1", resolve: dns, dnsInterval: 30 }
      - { url: "http://d.test:1", resolve: dns, dnsInterval: 1s }
      - { url: "http://e.test:1", resolve: dns, dnsInterval: 1000 }
`), [0, 1, 2].map(i => `gw.yaml:${i + 6}:62 upstreams.a.targets[${i}].dnsInterval: must be at least 1s: a name looked up more often loads its DNS servers for nothing (${i === 2 ? '30 is milliseconds: did you mean 30s?' : 'a number is milliseconds'})`))
})

t.test('healthCheck.timeout: 0 is refused (every check would fail), not taken as no limit', async t => {
  t.same(await issues(t, HEAD + `  a:
    targets: [ { url: "http://127.0.0.1:1" } ]
    healthCheck: { path: /h, timeout: 0 }
  b:
    targets: [ { url: "http://127.0.0.1:2" } ]
    healthCheck: { path: /h, interval: 1s, timeout: 0ms }
  c:
    targets: [ { url: "http://127.0.0.1:3" } ]
    healthCheck: { path: /h, interval: 1s, timeout: 1ms }
`), [
    'gw.yaml:6:39 upstreams.a.healthCheck.timeout: must be more than 0: it is how long a check may take (default 1s)',
    'gw.yaml:9:53 upstreams.b.healthCheck.timeout: must be more than 0: it is how long a check may take (default 1s)'
  ])
})
