import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

// Docker's `-v ./gateway.yaml:/app/config/gateway.yaml` is a bind mount of one file: reproduced
// here with mount --bind (root only), the host file in one directory, the "container's" in another.
const run = promisify(execFile)
const route = (name: string, path: string) => `  - { name: ${name}, match: { path: "${path}" }, upstream: a }`

async function served (url: string, path: string): Promise<number> {
  const res = await request(url + path)
  await res.body.dump()
  return res.statusCode
}

/** Whether this process may bind-mount (root with CAP_SYS_ADMIN); else why not. */
async function mountDenied (): Promise<string | false> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-mount-probe-'))
  await Promise.all([writeFile(join(dir, 'a'), 'a'), writeFile(join(dir, 'b'), 'b')])
  try {
    await run('mount', ['--bind', join(dir, 'a'), join(dir, 'b')])
    await run('umount', [join(dir, 'b')])
    return false
  } catch (err) {
    return `mount --bind is not permitted here: ${(err as Error).message.split('\n')[0] ?? ''}`
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

t.test('a single-file bind mount: writes in place on the host are followed; the gateway warns that renames are not', { skip: await mountDenied() }, async t => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-mount-'))
  const hostFile = join(dir, 'host.yaml')
  const mounted = join(dir, 'container', 'gateway.yaml')
  await run('mkdir', ['-p', join(dir, 'container')])
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('api', '/api'))
  await writeFile(hostFile, good)
  await writeFile(mounted, '')
  await run('mount', ['--bind', hostFile, mounted])
  const gw = await startFromFile(mounted, { watch: true })
  t.teardown(async () => {
    await gw.close()
    await run('umount', [mounted])
    await Promise.all([a.close(), rm(dir, { recursive: true, force: true })])
  })

  t.ok(gw.logs.some(l => l.level === 40 && String(l.msg).includes('is a bind mount of a single file')), 'the limitation is logged at start')
  // In place, as `cat > file`, vim with backupcopy=yes, or a config-management tool writing the file.
  await writeFile(hostFile, good.replace('/api"', '/v2"'))
  t.equal(await waitFor(async () => await served(gw.url, '/v2') === 200 ? 'live' : undefined, 10_000), 'live', 'the change went live')

  // By rename (most editors): the mount still shows the old file, which is why the docs say to mount the directory.
  await writeFile(join(dir, 'tmp.yaml'), good.replace('/api"', '/v3"'))
  await rename(join(dir, 'tmp.yaml'), hostFile)
  t.equal(await served(gw.url, '/v2'), 200, 'the previous config keeps serving')
})
