import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// Targets run compiled (dist/bench/targets, see bench/children.ts): this is then the compiled build, as deployed.
import * as api from '../../src/index.ts'
import { announce } from './announce.ts'
import { cachedConfig, noMetricsConfig, plainConfig, rateLimitConfig, reloadingConfig } from './portcullis-config.ts'

// BENCH_CONFIG picks the config: one target (case c), three (d), reloading (e), cached (f), rate-limited in memory (g) or on Redis (h, BENCH_REDIS_URL), request metrics off (i). It lives in a file, as in
// production, so that POST /config/reload (case e) reads the new version the bench writes there. Access log on: the production logger writes JSON lines
// to stdout, which the bench points at /dev/null or a file.
const file = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-')), 'gateway.yaml')
const ports = JSON.parse(process.env.BENCH_UPSTREAM_PORTS as string) as number[]
const config = process.env.BENCH_CONFIG
const text = config === 'reloading' ? reloadingConfig(ports, 0)
  : config === 'cached' ? cachedConfig(ports)
  : config === 'ratelimit-memory' ? rateLimitConfig(ports)
    : config === 'ratelimit-redis' ? rateLimitConfig(ports, process.env.BENCH_REDIS_URL)
      : config === 'no-metrics' ? noMetricsConfig(ports)
      : plainConfig(ports, config === 'three-targets' ? 3 : 1)
writeFileSync(file, text)
const running = await api.startPortcullis(await api.loadConfig(file, {}), api.createLogger({ pretty: false }))
announce(running.gateway.app.server.address(), { admin: running.adminUrl, configFile: file })
