import t from 'tap'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { hintsFor, TRY } from '../../src/cli/commands/demo.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// `portcullis demo -c tour.yaml` once printed config/demo.yaml's requests (/orders, /catalog,
// :9901/readyz) whatever the config: a newcomer tried them on a config without those routes.
const hints = async (yaml: string, file = 'tour.yaml'): Promise<string[]> => hintsFor(await parseConfig(yaml, file, {}))

t.test('with config/demo.yaml, the requests the README shows', async t => {
  t.equal((await hints(readFileSync(new URL('../../config/demo.yaml', import.meta.url), 'utf8'), 'config/demo.yaml')).join('\n'), TRY)
})

t.test('with the README\'s tour config, only the demo\'s requests it answers as they say', async t => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const tour = /## A tour[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1] as string
  const lines = await hints(tour)
  t.same(lines.map(l => /:8080(\/\S*)\s+#/.exec(l)?.[1]), ['/users/7', '/nothing-here', '/orders/../users/7'])
  t.notMatch(lines.join('\n'), /9901|catalog|x-api-key/, 'no route, plugin or listener it does not have')
})

t.test('with other routes and listeners, a request each route answers, and the admin listener\'s', async t => {
  const routes = `
upstreams:
  app: { targets: [ { url: "http://UPSTREAM" } ] }
routes:
  - name: items
    match: { path: /items/:id, methods: [PUT, DELETE] }
    upstream: app
  - name: hosted
    match: { host: "*.example.com", path: /h/*, headers: { x-version: "2" } }
    upstream: app
  - name: status
    match: { path: /status }
    upstream: app
`
  const lines = await hints(`server:\n  listen: { host: "::", port: 8081 }\nadmin:\n  listen: { port: 9000 }\n${routes}`)
  t.same(lines, [
    'curl -i -H \'x-version: 2\' -H \'host: www.example.com\' http://[::1]:8081/h/x   # route hosted',
    'curl -i http://[::1]:8081/status   # route status',
    'curl -i -X PUT http://[::1]:8081/items/1   # route items',
    'curl -s http://127.0.0.1:9000/readyz   # admin listener'
  ])
  t.same(await hints(`server:\n  listen: { port: 8080 }\n${routes}`).then(l => l.filter(h => /nothing-here|readyz/.test(h))), ['curl -i http://127.0.0.1:8080/nothing-here            # 404 with a JSON body'],
    'no admin listener, no readyz')

  // Each as a real gateway answers it: through its route, to the upstream.
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway(routes.replace('http://UPSTREAM', upstream.url))
  t.teardown(() => gw.close())
  for (const line of lines.slice(0, 3)) {
    const method = /-X (\S+)/.exec(line)?.[1] ?? 'GET'
    const headers = Object.fromEntries([...line.matchAll(/-H '([^:]+): ([^']*)'/g)].map(m => [m[1], m[2]]))
    const res = await request(`${gw.url}${new URL(/http:\/\/\S+/.exec(line)?.[0] as string).pathname}`, { method, headers })
    t.equal(res.statusCode, 200, line)
    t.match(await res.body.json(), { method }, line)
  }
})
