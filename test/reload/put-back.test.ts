import t from 'tap'
import { request } from 'undici'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

const route = (name: string, path: string) => `  - { name: ${name}, match: { path: "${path}" }, upstream: a }`

async function lastReload (adminUrl: string | undefined): Promise<{ result: string, trigger: string } | null> {
  const body = await (await request(`${adminUrl}/config`)).body.json() as { lastReload: { result: string, trigger: string } | null }
  return body.lastReload
}

t.test('a broken file put back to the active config: lastReload says unchanged, logged and counted, so an alert clears', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('api', '/api'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.replace(good.replace('upstream: a', 'upstream: nope'))
  t.equal(await waitFor(async () => (await lastReload(gw.adminUrl))?.result === 'invalid' ? 'invalid' : undefined), 'invalid')

  await cf.replace(good)
  t.equal(await waitFor(async () => (await lastReload(gw.adminUrl))?.result === 'unchanged' ? 'unchanged' : undefined), 'unchanged',
    'the attempt that found the active text is recorded')
  t.match(await lastReload(gw.adminUrl), { result: 'unchanged', trigger: 'file' })
  t.ok(gw.logs.some(l => l.msg === 'config file is back to the active config; nothing to reload'), 'and logged')
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.match(metrics, /portcullis_config_reloads_total\{result="unchanged"\} 1\n/)
  t.match(metrics, /portcullis_config_reloads_total\{result="invalid"\} 1\n/)
})

t.test('a save of the active text after a success is not recorded: lastReload keeps saying success', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('api', '/api'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  const next = good.replace('/api"', '/next"')
  await cf.replace(next)
  t.equal(await waitFor(async () => (await lastReload(gw.adminUrl))?.result), 'success')
  const status = await gw.reloader.reload('file')
  t.equal(status.result, 'unchanged', 'the attempt itself says unchanged')
  t.match(await lastReload(gw.adminUrl), { result: 'success' })
})
