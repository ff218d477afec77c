import t from 'tap'
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

/**
 * A ConfigMap volume exactly as the kubelet writes it (its AtomicWriter): the files live in a
 * timestamped directory, `..data` links to it, and `gateway.yaml` links to `..data/gateway.yaml`.
 * An update writes a new timestamped directory, points a `..data_tmp` link at it, renames that
 * over `..data` (the atomic step), and removes the old directory.
 */
async function configMapVolume (yaml: string) {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-configmap-'))
  let n = 0
  let current = ''
  const writeVersion = async (text: string) => {
    const version = `..2026_12_02_04_00_0${n++}.${1000 + n}`
    await mkdir(join(dir, version))
    await writeFile(join(dir, version, 'gateway.yaml'), text)
    return version
  }
  current = await writeVersion(yaml)
  await symlink(current, join(dir, '..data'))
  await symlink('..data/gateway.yaml', join(dir, 'gateway.yaml'))
  return {
    file: join(dir, 'gateway.yaml'),
    async update (text: string) {
      const next = await writeVersion(text)
      await symlink(next, join(dir, '..data_tmp'))
      await rename(join(dir, '..data_tmp'), join(dir, '..data'))
      await rm(join(dir, current), { recursive: true })
      current = next
    },
    remove: () => rm(dir, { recursive: true, force: true })
  }
}

const route = (path: string, upstream: string) => `  - { name: api, match: { path: "${path}" }, upstream: ${upstream} }`

t.test('a ConfigMap update reaches the gateway without a restart; a bad one keeps the old config serving', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const volume = await configMapVolume(gatewayYaml({ u: [a.url] }, route('/api', 'u')))
  const gw = await startFromFile(volume.file, { watch: true })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), b.close(), volume.remove()]) })
  const served = async () => { const res = await request(`${gw.url}/api`); return res.statusCode === 200 ? await res.body.text() : `status ${res.statusCode}` }
  t.equal(await served(), 'a')

  await volume.update(gatewayYaml({ u: [b.url] }, route('/api', 'u')))
  t.equal(await waitFor(async () => await served() === 'b' ? 'b' : undefined), 'b', 'the first swap is applied')

  await volume.update(gatewayYaml({ u: [a.url] }, route('api-without-slash', 'u')))
  t.ok(await waitFor(() => gw.logs.some(l => l.trigger === 'file' && typeof l.msg === 'string' && l.msg.startsWith('config reload rejected')) ? true : undefined), 'the bad swap is rejected')
  t.equal(await served(), 'b', 'the previous config keeps serving')

  await volume.update(gatewayYaml({ u: [a.url] }, route('/api', 'u')))
  t.equal(await waitFor(async () => await served() === 'a' ? 'a' : undefined), 'a', 'a later good swap is applied again (the watch survived the old directory\'s removal)')
})
