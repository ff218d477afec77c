import * as api from '../../src/index.ts'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { announce } from './announce.ts'

/** The auth bench's gateway: the same upstream behind a plain route, two jwt-auth routes (RS256, static key) with and without the verified-token cache, and a basic-auth route. */
const pem = JSON.stringify(process.env.BENCH_JWT_PEM as string)
const file = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-auth-')), 'gateway.yaml')
writeFileSync(file, `
server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true
consumers:
  - { id: bench, credentials: { basic-auth: { username: bench, password: "${process.env.BENCH_BASIC_HASH as string}" } } }
upstreams:
  origin: { targets: [ { url: "${process.env.BENCH_UPSTREAM as string}" } ] }
routes:
  - { name: plain, match: { path: /plain/* }, upstream: origin }
  - { name: jwt, match: { path: /jwt/* }, upstream: origin, plugins: { jwt-auth: { keys: [ ${pem} ], audience: bench, algorithms: [RS256] } } }
  - { name: jwt-nocache, match: { path: /jwt-nocache/* }, upstream: origin, plugins: { jwt-auth: { keys: [ ${pem} ], audience: bench, algorithms: [RS256], cacheSize: 0 } } }
  - { name: basic, match: { path: /basic/* }, upstream: origin, plugins: { basic-auth: {} } }
`)
const running = await api.startPortcullis(await api.loadConfig(file, {}), api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address())
