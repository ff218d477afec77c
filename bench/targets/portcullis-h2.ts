import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as api from '../../src/index.ts'
import { announce } from './announce.ts'
import { h2Config } from './portcullis-config.ts'

// With TLS and HTTP/2: the certificate is in BENCH_TLS_DIR (made by the bench), where the config file goes too.
const file = join(process.env.BENCH_TLS_DIR as string, 'gateway.yaml')
const text = h2Config(JSON.parse(process.env.BENCH_UPSTREAM_PORTS as string) as number[])
if (!text.includes('http2: true')) throw new Error('the plain config changed shape: h2Config no longer applies')
writeFileSync(file, text)
const running = await api.startPortcullis(await api.loadConfig(file, {}), api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address())
