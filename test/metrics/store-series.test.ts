import t from 'tap'
import { request } from 'undici'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { callUntil } from '../helpers/wait.ts'

/** The lines of `adminUrl`'s /metrics about the store `store`. */
async function storeLines (adminUrl: string, store: string): Promise<string[]> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text()
  return text.split('\n').filter(l => l.startsWith('portcullis_store_') && l.includes(`store="${store}"`))
}

t.test('a Redis store\'s error counter starts at 0; its series leave /metrics when no config uses it', async t => {
  const redis = await RedisProcess.start()
  const up = await startUpstream((req, res) => { req.resume(); res.setHeader('cache-control', 'max-age=60'); res.end('ok') })
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove(); await redis.stop() })
  // commandTimeout 2s: a call over the default 100 ms on a loaded machine would count as an error (the drop at the re-add included).
  const withStore = gatewayYaml({ u: [up.url] }, '  - { name: shared, match: { path: /s }, upstream: u, plugins: { cache: { store: shared } } }',
    `stores:\n  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }`)
  await cf.write(withStore)
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const admin = gw.adminUrl as string

  t.ok((await storeLines(admin, 'shared')).includes('portcullis_store_errors_total{store="shared"} 0'), 'errors at 0 before any failure')
  t.equal((await request(`${gw.url}/s`)).statusCode, 200)
  t.ok((await storeLines(admin, 'shared')).some(l => l.startsWith('portcullis_store_command_duration_seconds_count{store="shared"}')), 'its commands timed')

  await cf.write(gatewayYaml({ u: [up.url] }, '  - { name: plain, match: { path: /p }, upstream: u }'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  // Released once the retired runtime has drained (it has no request in flight: at once).
  let lines: string[] = ['not read yet']
  t.ok(await callUntil(async () => { lines = await storeLines(admin, 'shared') }, () => lines.length === 0, 5_000), 'no series of the store once no config uses it')

  await cf.write(withStore)
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  const back = await storeLines(admin, 'shared')
  t.ok(back.includes('portcullis_store_errors_total{store="shared"} 0'), 'the store back: its errors at 0 again (it connects before the cache, setting up, drops entries of an earlier config there)')
})
