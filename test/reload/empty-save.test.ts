import { closeSync, openSync, truncateSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { request } from 'undici'
import { metricValue } from '../helpers/metric-value.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const route = (path: string) => `  - { name: api, match: { path: "${path}" }, upstream: a }`

t.test('a save that truncates the file, then writes it: no rejection, one successful reload', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('/api'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  truncateSync(cf.file, 0)
  t.ok(await waitForLog(gw.logs, { msg: 'config file is empty: waiting for it to be written' }), 'the watcher saw the empty file')
  writeFileSync(cf.file, good.replace('/api"', '/next"'))
  t.ok(await waitForLog(gw.logs, { msg: 'config reloaded' }), 'the written text is put in service')
  t.equal((await request(`${gw.url}/next`)).statusCode, 200)

  t.notOk(gw.logs.some(l => l.level === 50), 'nothing logged as an error')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_config_reloads_total{result="invalid"}'), 0)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_config_reloads_total{result="success"}'), 1)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_config_last_reload_successful'), 1)
})

t.test('a file left empty is rejected after the wait; an admin reload of an empty file fails at once', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('/api')))
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  truncateSync(cf.file, 0)
  const rejected = await waitForLog(gw.logs, { level: 50, trigger: 'file' }, 10_000)
  t.match(rejected, { msg: /config reload rejected.*the file is empty/s }, 'the watcher reports the file left empty')
  t.equal(gw.logs.filter(l => l.level === 50 && l.trigger === 'file').length, 1, 'once')
  t.match(await gw.reloader.reload('admin'), { result: 'invalid', issues: [{ message: /the file is empty/ }] }, 'an admin reload: rejected at once')
})

// The wait ran from the first time the file was found empty: once one empty file had been rejected,
// the next save that truncates then writes it was rejected at once, before its write.
t.test('after a file left empty is rejected, the next save that truncates it waits again for its write', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('/api'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const waiting = () => gw.logs.filter(l => l.msg === 'config file is empty: waiting for it to be written').length

  truncateSync(cf.file, 0)
  t.ok(await waitForLog(gw.logs, { level: 50, trigger: 'file' }, 10_000), 'left empty: rejected after the wait')
  // Truncated again (as an editor opening it for writing does): a new save, a new wait.
  closeSync(openSync(cf.file, 'w'))
  t.ok(await until(() => waiting() === 2, 5_000), 'the new empty save waits for its write')
  writeFileSync(cf.file, good.replace('/api"', '/next"'))
  t.ok(await waitForLog(gw.logs, { msg: 'config reloaded' }), 'the written text is put in service')
  t.equal((await request(`${gw.url}/next`)).statusCode, 200)
  t.equal(gw.logs.filter(l => l.level === 50).length, 1, 'the first save alone rejected')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_config_reloads_total{result="invalid"}'), 1)
})
