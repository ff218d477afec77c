import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as api from '../../src/index.ts'
import { announce } from './announce.ts'

// One process: a 100 KiB JSON origin on its own port and the gateway in front of it with the same
// route plain, compressed, and cached (plain and br).
// About what an API returns for a page of records: 100 KiB exactly, padded in a last field.
const items = Array.from({ length: 1000 }, (_, i) => ({ id: i, sku: `SKU-${String(i * 7919 % 100000).padStart(5, '0')}`, name: `Item number ${i}`, price: (i * 37 % 1000) / 10, inStock: i % 3 !== 0 }))
const SIZE = 100 * 1024
const page = { items: items.slice(0, 1), pad: '' }
for (let n = 1; n <= items.length && JSON.stringify({ ...page, items: items.slice(0, n) }).length < SIZE; n++) page.items = items.slice(0, n)
page.pad = 'x'.repeat(SIZE - JSON.stringify(page).length)
const body = Buffer.from(JSON.stringify(page))
const origin = createServer((req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) })
  res.end(body)
})
origin.keepAliveTimeout = 120_000
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
const port = (origin.address() as AddressInfo).port

const route = (name: string, plugins: string) => `  - { name: ${name}, match: { path: /${name}/* }, upstream: origin, plugins: ${plugins} }`
const config = await api.parseConfig(`
server:
  listen: { host: 127.0.0.1, port: 0 }
logging: { level: warn, accessLog: false }
upstreams:
  origin: { targets: [ { url: "http://127.0.0.1:${port}" } ] }
routes:
${route('plain', '{}')}
${route('br', '{ compress: { encodings: [br] } }')}
${route('gzip', '{ compress: { encodings: [gzip] } }')}
${route('br11', '{ compress: { encodings: [br], levels: { br: 11 } } }')}
${route('gzip9', '{ compress: { encodings: [gzip], levels: { gzip: 9 } } }')}
${route('cached', '{ cache: { defaultTtl: 1h } }')}
${route('cached-br', '{ cache: { defaultTtl: 1h }, compress: { encodings: [br] } }')}
`, 'bench-compress.yaml', {})
const running = await api.startPortcullis(config, api.createLogger({ pretty: false, level: 'warn' }))
announce(running.gateway.app.server.address(), { bodyBytes: body.length })
