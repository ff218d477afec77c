import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startFromFile } from '../reload/helpers.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

// A user plugin that runs before every built-in (above response-headers, 5000) is outside it and
// cors: its replies get neither's headers. Any integer is a priority; such a plugin is warned of
// at load, built-ins never; one loaded that the config does not use (on no route, not top-level) neither.
t.test('user plugins that run before every built-in are warned of at load, those inside are not', async t => {
  const dir = t.testdir({})
  const plugins = { outer: 9000, 'aaa-tie': 5000, 'zzz-tie': 5000, inner: 4000, low: -5, unused: 9500 }
  for (const [name, priority] of Object.entries(plugins)) writeUserPlugin(dir, name, priority, '{ onRequest: () => ({ status: 299 }) }')
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [${Object.keys(plugins).map(n => `./${n}.ts`).join(', ')}]
plugins:
  aaa-tie: {}
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - name: r
    match: { path: /* }
    upstream: app
    plugins:
      response-headers: { set: { x-edited: 'yes' } }
      outer: {}
`)
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  const warned = gw.logs.filter(l => l.level === 40 && typeof l.plugin === 'string')
  t.same(warned.map(l => [l.plugin, l.priority]), [['outer', 9000], ['aaa-tie', 5000]])
  t.match(warned[0]?.msg, /^plugin "outer" \(priority 9000\) runs before every built-in plugin \(the outermost: response-headers, 5000\): its replies pass none of their response hooks/)
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  t.same([res.statusCode, res.headers['x-edited']], [299, undefined], 'what it warns of: the reply has no response-headers edit')
  writeFileSync(file, readFileSync(file, 'utf8').replace("x-edited: 'yes'", "x-edited: 'still'"))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  t.equal(gw.logs.filter(l => l.level === 40 && typeof l.plugin === 'string').length, warned.length, 'a reload does not repeat it')
})
