import t from 'tap'
import { Writable } from 'node:stream'
import zlib from 'node:zlib'
import pino from 'pino'
import { parseConfig } from '../../src/config/load.ts'
import { startPortcullis } from '../../src/server/start.ts'

const HAS_ZSTD = typeof (zlib as unknown as Record<string, unknown>).createZstdCompress === 'function'

// Parsed JSON keeps the last of two equal keys, so the raw line is read: the plugin's logger
// already adds route and plugin, and a second "route" in the line confuses log tools.
t.test('the warning of a listed coding skipped names its route once', { skip: HAS_ZSTD && 'this Node has zstd: nothing skipped' }, async t => {
  const raw: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      raw.push(...chunk.toString().split('\n').filter(l => l !== ''))
      cb()
    }
  })
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: listed, match: { path: /* }, upstream: up, plugins: { compress: { encodings: [zstd, gzip] } } }
`, 'gw.yaml', {})
  const gateway = await startPortcullis(loaded, pino({ level: 'info' }, stream))
  t.teardown(() => gateway.close())
  const warning = raw.find(l => l.includes('zstd not available on this Node')) ?? ''
  t.equal(warning.match(/"route":/g)?.length, 1, warning)
  t.equal(warning.match(/"plugin":/g)?.length, 1, warning)
  t.match(JSON.parse(warning || '{}'), { level: 40, route: 'listed', plugin: 'compress', skipped: ['zstd'] })
})
