import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { stringify } from 'yaml'
import { portcullisDashboard } from '../../grafana/dashboards/portcullis.ts'
import { fill, panelExpressions } from './helpers.ts'

const run = promisify(execFile)
const d = portcullisDashboard()
const panel = (title: string, i = 0, interval = '5m') => fill(panelExpressions(d, title)[i] ?? '', '5m', interval)
const reloads = panel('Config reloads', 0, '1m')
const instanceVariable = fill(String(d.templating?.list?.find(v => v.name === 'instance')?.query), '5m')

// Per minute over 10 minutes, as Prometheus would have scraped them (promtool's series notation).
const perMinute = (series: string, n: number) => ({ series, values: `0+${n}x10` })

interface Series { series: string, values: string }
// `input`, scraped every `interval` (default: every minute), evaluated at `at` (default 10m).
interface Case { name: string, expr: string, exp: Array<{ labels: string, value: number }>, input?: Series[], interval?: string, at?: string }

t.test('dashboard panels over known series give what they say (promtool test rules, promql_expr_test)', async t => {
  const input: Series[] = [
    perMinute('portcullis_http_requests_total{route="ok", method="GET", status="200", instance="gw1"}', 60),
    perMinute('portcullis_http_requests_total{route="bad", method="GET", status="200", instance="gw1"}', 45),
    perMinute('portcullis_http_requests_total{route="bad", method="GET", status="404", instance="gw1"}', 15),
    perMinute('portcullis_ratelimit_requests_total{route="ok", result="allowed", instance="gw1"}', 60),
    ...['hit', 'stale', 'collapsed', 'revalidated'].map(result => perMinute(`portcullis_cache_requests_total{route="ok", result="${result}", instance="gw1"}`, 15)),
    perMinute('portcullis_cache_requests_total{route="ok", result="miss", instance="gw1"}', 60),
    perMinute('portcullis_upstream_ejections_total{upstream="users", target="http://a:1", instance="gw1"}', 60),
    // Two replicas: target a is down on gw2 only, b up on both.
    { series: 'portcullis_upstream_target_healthy{upstream="users", target="http://a:1", instance="gw1"}', values: '1x10' },
    { series: 'portcullis_upstream_target_healthy{upstream="users", target="http://a:1", instance="gw2"}', values: '0x10' },
    { series: 'portcullis_upstream_target_healthy{upstream="users", target="http://b:1", instance="gw1"}', values: '1x10' },
    { series: 'portcullis_upstream_target_healthy{upstream="users", target="http://b:1", instance="gw2"}', values: '1x10' },
    // A gateway not requested yet: only its config series.
    { series: 'portcullis_config_info{hash="abc", instance="gw3"}', values: '1x10' },
    { series: 'portcullis_config_info{hash="abc", instance="gw1"}', values: '1x10' }
  ]
  const cases: Case[] = [
    { name: 'no 5xx at all: the 5xx ratio is 0, not "No data"', expr: panel('5xx ratio'), exp: [{ labels: '{}', value: 0 }] },
    { name: 'a route with no 5xx: 0', expr: panel('Error ratio by route', 0), exp: [{ labels: '{route="bad"}', value: 0 }, { labels: '{route="ok"}', value: 0 }] },
    { name: 'a route with no 4xx: 0', expr: panel('Error ratio by route', 1), exp: [{ labels: '{route="bad"}', value: 0.25 }, { labels: '{route="ok"}', value: 0 }] },
    { name: 'nothing limited: 0', expr: panel('Rate-limited share'), exp: [{ labels: '{route="ok"}', value: 0 }] },
    { name: 'hits, stale, collapsed and revalidated are served from the cache', expr: panel('Cache hit ratio'), exp: [{ labels: '{route="ok"}', value: 0.5 }] },
    { name: 'a target counts once, healthy when every replica sees it so', expr: panel('Healthy targets', 0), exp: [{ labels: '{upstream="users"}', value: 1 }] },
    { name: 'targets, however many replicas', expr: panel('Healthy targets', 1), exp: [{ labels: '{upstream="users"}', value: 2 }] },
    { name: 'ejections per second, as retries', expr: panel('Retries and ejections', 1), exp: [{ labels: '{target="http://a:1", upstream="users"}', value: 1 }] },
    { name: 'the instance variable lists a gateway before its first request', expr: instanceVariable, exp: [{ labels: '{instance="gw1"}', value: 1 }, { labels: '{instance="gw3"}', value: 1 }] },
    {
      name: 'two statuses of a class are one series of the class',
      expr: panel('Requests by route and status class'),
      input: ['502', '504'].map(status => perMinute(`portcullis_http_requests_total{route="up", method="GET", status="${status}", instance="gw1"}`, 60)),
      exp: [{ labels: '{class="5xx", route="up"}', value: 2 }]
    },
    // 504s to only-if-cached are left out on the cached route; a route without a cache keeps its 504s.
    ...([['5xx ratio', 0, [{ labels: '{}', value: 0.05 }]], ['Error ratio by route', 0, [{ labels: '{route="cached"}', value: 0 }, { labels: '{route="up"}', value: 0.1 }]]] as const)
      .map(([title, i, exp]) => ({
        name: `${title}: the cache's 504s to only-if-cached are not counted`,
        expr: panel(title, i),
        input: [
          perMinute('portcullis_http_requests_total{route="cached", method="GET", status="200", instance="gw1"}', 50),
          perMinute('portcullis_http_requests_total{route="cached", method="GET", status="504", instance="gw1"}', 10),
          perMinute('portcullis_cache_requests_total{route="cached", result="unsatisfiable", instance="gw1"}', 10),
          perMinute('portcullis_cache_requests_total{route="cached", result="hit", instance="gw1"}', 50),
          perMinute('portcullis_http_requests_total{route="up", method="GET", status="200", instance="gw1"}', 54),
          perMinute('portcullis_http_requests_total{route="up", method="GET", status="504", instance="gw1"}', 6)
        ],
        exp: [...exp]
      })),
    // Scraped every 15s, one invalid reload at 8m, bars of 1m: increase() read 1.33, over several points.
    ...([['8m30s', 1], ['9m30s', 0]] as const).map(([at, value]) => ({
      name: `one reload is one bar of 1 (at ${at}: ${value})`,
      expr: reloads,
      input: [{ series: 'portcullis_config_reloads_total{result="invalid", instance="gw1"}', values: '0x31 1x8' }],
      interval: '15s',
      at,
      exp: [{ labels: '{result="invalid"}', value }]
    })),
    {
      name: 'a restart (the counter back to 0) reads 0, not a negative bar',
      expr: reloads,
      input: [{ series: 'portcullis_config_reloads_total{result="success", instance="gw1"}', values: '5x31 0x8' }],
      interval: '15s',
      at: '8m30s',
      exp: [{ labels: '{result="success"}', value: 0 }]
    }
  ]
  const dir = mkdtempSync(join(tmpdir(), 'pc-dashboard-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await Promise.all(cases.map(async (c, i) => {
    writeFileSync(join(dir, `${i}.yaml`), stringify({
      rule_files: [],
      evaluation_interval: '1m',
      tests: [{ interval: c.interval ?? '1m', input_series: c.input ?? input, promql_expr_test: [{ expr: c.expr, eval_time: c.at ?? '10m', exp_samples: c.exp }] }]
    }))
    // promtool says what it got on stderr.
    const r = await run('promtool', ['test', 'rules', `${i}.yaml`], { cwd: dir }).catch((err: { stdout: string, stderr: string }) => err)
    t.match(r.stdout, /SUCCESS/, `${c.name}${r.stderr === '' ? '' : `\n${r.stderr}`}`)
  }))
})
