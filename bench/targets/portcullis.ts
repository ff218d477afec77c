import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// Targets run compiled (dist/bench/targets, see bench/children.ts): this is then the compiled build, as deployed.
import * as api from '../../src/index.ts'
import { announce } from './announce.ts'
import { noMetricsConfig, oneProcessConfig, plainConfig, reloadingConfig } from './portcullis-config.ts'

// BENCH_CONFIG picks the config: one target with the plugin routes of cases (f) to (h) (case c,
// its Redis at BENCH_REDIS_URL, when (h) is measured), three targets (d), reloading (e), request metrics off (i). It lives in a file, as in
// production, so that POST /config/reload (case e) reads the new version the bench writes there. Access log on: the production logger writes JSON lines
// to stdout, which the bench points at /dev/null or a file.
const file = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-')), 'gateway.yaml')
const ports = JSON.parse(process.env.BENCH_UPSTREAM_PORTS as string) as number[]
const config = process.env.BENCH_CONFIG
const redisUrl = process.env.BENCH_REDIS_URL
const text = config === 'reloading' ? reloadingConfig(ports, 0)
  : config === 'three-targets' ? plainConfig(ports, 3)
    : config === 'no-metrics' ? noMetricsConfig(ports, redisUrl)
      : oneProcessConfig(ports, redisUrl)
writeFileSync(file, text)
const running = await api.startPortcullis(await api.loadConfig(file, {}), api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address(), { admin: running.adminUrl, configFile: file })
