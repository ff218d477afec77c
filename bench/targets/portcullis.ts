import type * as Api from '../../src/index.ts'
import { announce } from './announce.ts'

// The compiled build (dist/, made by `npm run build`), as deployed: not the sources under tsx,
// whose transform adds helper calls to the hot path.
const api = await import(new URL('../../dist/src/index.js', import.meta.url).href) as typeof Api

// One plain route, access log on. The production logger writes JSON lines to stdout, which the
// bench points at /dev/null or a file: the log line is built and written as in production.
const yaml = `
server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true
upstreams:
  origin:
    targets: [ { url: "${process.env.BENCH_UPSTREAM as string}" } ]
routes:
  - name: all
    match: { path: /* }
    upstream: origin
`
const loaded = await api.parseConfig(yaml, 'bench.yaml', {})
const running = await api.startPortcullis(loaded, api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address())
