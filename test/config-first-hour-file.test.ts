import t, { type Test } from 'tap'
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { loadConfig } from '../src/config/load.ts'
import { ConfigError, formatIssue } from '../src/config/config-error.ts'

// The config file itself: what is wrong with it is said at no line (there was a made-up 1:1).
const CONFIG = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes: []
`

async function refused (t: Test, file: string): Promise<string[]> {
  try {
    await loadConfig(file, {})
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue)
    throw err
  }
  t.fail('the config was accepted')
  return []
}

function folder (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-first-hour-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a missing file: the path looked for, the current directory and a hint, at no line', async t => {
  const file = 'no-such-folder/gateway.yaml'
  t.same(await refused(t, file), [
    `${file}: cannot read file: ENOENT: the file does not exist: ${resolve(file)} (from the current directory ${process.cwd()}); give the config file's path with -c PATH`
  ])
  const dir = folder(t)
  writeFileSync(join(dir, 'gateway.yml'), CONFIG)
  t.same(await refused(t, join(dir, 'gateway.yaml')), [
    `${join(dir, 'gateway.yaml')}: cannot read file: ENOENT: the file does not exist: ${join(dir, 'gateway.yaml')}; there is ${join(dir, 'gateway.yml')}`
  ], 'the .yml beside the .yaml asked for')
})

t.test('a Windows path on Linux: paths are written with /', { skip: process.platform === 'win32' }, async t => {
  t.same(await refused(t, 'config\\gateway.yaml'), [
    `config\\gateway.yaml: cannot read file: ENOENT: the file does not exist: ${resolve('config\\gateway.yaml')} (from the current directory ${process.cwd()}); paths are written with "/" here: config/gateway.yaml`
  ])
})

t.test('a directory is said to be one, with the YAML files in it; no advice about sops (that is for pipes)', async t => {
  const dir = folder(t)
  mkdirSync(join(dir, 'config'))
  writeFileSync(join(dir, 'config', 'gateway.yaml'), CONFIG)
  t.same(await refused(t, join(dir, 'config')), [
    `${join(dir, 'config')}: cannot read file: it is a directory, not a file: give the config file's path with -c PATH (it holds ${join(dir, 'config', 'gateway.yaml')})`
  ])
})

t.test('a device is no regular file, with no advice about sops', { skip: process.platform === 'win32' }, async t => {
  t.same(await refused(t, '/dev/null'), [
    '/dev/null: cannot read file: it is a device or socket, not a regular file: the gateway reads it again on every reload (write the config to a file)'
  ])
})

t.test('a file over 64 MiB is refused before it is read', async t => {
  const file = join(folder(t), 'huge.yaml')
  writeFileSync(file, '')
  // Sparse: no disk written, and nothing read, or the test would take the memory the check saves.
  truncateSync(file, 700 * 2 ** 20)
  t.same(await refused(t, file), [`${file}: the file is 700 MiB: a config file may be at most 64 MiB`])
})

t.test('a UTF-16 file (with a byte order mark either way, or without one) is said to be one', async t => {
  const dir = folder(t)
  const le = Buffer.from(CONFIG, 'utf16le')
  const forms = {
    'le.yaml': Buffer.concat([Buffer.from([0xff, 0xfe]), le]),
    'be.yaml': Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(le).swap16()]),
    'no-bom.yaml': le
  }
  for (const [name, bytes] of Object.entries(forms)) {
    writeFileSync(join(dir, name), bytes)
    t.same(await refused(t, join(dir, name)), [`${join(dir, name)}: the file is UTF-16 (as Notepad saves "Unicode"): save it as UTF-8`], name)
  }
  writeFileSync(join(dir, 'utf8.yaml'), '\ufeff' + CONFIG)
  t.ok(await loadConfig(join(dir, 'utf8.yaml'), {}), 'UTF-8 with a byte order mark loads')
})
