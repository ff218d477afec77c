import t from 'tap'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// res.replyBody: a plugin reply's Buffer, the same object on every reply that reuses it, which a
// response hook may swap for another Buffer until a stream is added.
const dir = t.testdir({})
const STORED = Buffer.from('the stored body')
const seen = sharedWithPlugins('reply-body-seen', [] as Array<Buffer | undefined>)
sharedWithPlugins('reply-body-stored', STORED)
writeUserPlugin(dir, 'replier', 100, `{ onRequest: (req) => req.path === '/json' ? { status: 200, body: { a: 1 } } : { status: 200, headers: { 'content-type': 'text/plain' }, body: shared('reply-body-stored') } }`)
writeUserPlugin(dir, 'swapper', 900, `{
  onResponse (res, req) {
    shared('reply-body-seen').push(res.replyBody)
    if (req.path === '/swap') { res.replyBody = Buffer.from('swapped'); res.headers['content-length'] = '7' }
    if (req.path === '/streamed') {
      res.pipeThrough(new (shared('reply-body-stream'))())
      shared('reply-body-seen').push(res.replyBody)
      try { res.replyBody = Buffer.from('late') } catch (err) { res.headers['x-refused'] = err.constructor.name }
    }
  }
}`)
sharedWithPlugins('reply-body-stream', PassThrough)

const up = await startUpstream((_req, res) => { res.end('from the upstream') })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./replier.ts, ./swapper.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: replied, match: { path: /* }, upstream: up, plugins: { replier: {}, swapper: {} } }
  - { name: proxied, match: { path: /proxied }, upstream: up, plugins: { swapper: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

const get = async (path: string) => {
  const res = await request(`${gw.url}${path}`)
  return { body: await res.body.text(), headers: res.headers }
}

t.test('the very Buffer the plugin replied with, reply after reply', async t => {
  seen.length = 0
  t.equal((await get('/a')).body, 'the stored body')
  t.equal((await get('/b')).body, 'the stored body')
  t.equal(seen.length, 2)
  t.ok(seen[0] === STORED && seen[1] === STORED, 'the same object both times')
})

t.test('swapped for another Buffer by a response hook: that is sent', async t => {
  const res = await get('/swap')
  t.equal(res.body, 'swapped')
  t.equal(res.headers['content-length'], '7')
})

t.test('undefined for an upstream body and a reply that is not a Buffer; after pipeThrough; not to be set then', async t => {
  seen.length = 0
  t.equal((await get('/proxied')).body, 'from the upstream')
  t.equal((await get('/json')).body, '{"a":1}')
  const streamed = await get('/streamed')
  t.equal(streamed.body, 'the stored body', 'the body through the stream')
  t.equal(streamed.headers['x-refused'], 'TypeError')
  t.same(seen.map(b => b === undefined ? 'none' : b.toString()), ['none', 'none', 'the stored body', 'none'])
})
