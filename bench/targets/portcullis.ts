import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as Api from '../../src/index.ts'
import { announce } from './announce.ts'
import { opsConfig, plainConfig } from './portcullis-config.ts'

// The compiled build (dist/, made by `npm run build`), as deployed: not the sources under tsx,
// whose transform adds helper calls to the hot path.
const api = await import(new URL('../../dist/src/index.js', import.meta.url).href) as typeof Api

// BENCH_CONFIG picks the config: plain (case c) or ops (cases d and e). It lives in a file, as in
// production, so that POST /config/reload (case e) reads the new version the bench writes there. Access log on: the production logger writes JSON lines
// to stdout, which the bench points at /dev/null or a file.
const file = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-')), 'gateway.yaml')
const ports = JSON.parse(process.env.BENCH_UPSTREAM_PORTS as string) as number[]
writeFileSync(file, process.env.BENCH_CONFIG === 'ops' ? opsConfig(ports, 0) : plainConfig(ports))
const running = await api.startPortcullis(await api.loadConfig(file, {}), api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address(), { admin: running.adminUrl, configFile: file })
