import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, rmSync } from 'node:fs'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

const route = '  - { name: api, match: { path: /api }, upstream: a }'
const NOT_REGULAR = /cannot read file: it is a named pipe \(FIFO\), not a regular file/

/** Replaces `file` with a named pipe no one writes to (as `sops exec-file` makes); a reader blocked in open() is let go at teardown. */
function fifoAt (t: Test, file: string): void {
  rmSync(file, { force: true })
  execFileSync('mkfifo', [file])
  t.teardown(() => {
    try { closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK)) } catch { /* no reader */ }
  })
}

t.test('a config file that is a named pipe is refused at start: exit 1, saying why', async t => {
  const cf = await configFile('')
  t.teardown(() => cf.remove())
  fifoAt(t, cf.file)
  const cli = spawnCli(['start', '-c', cf.file])
  t.teardown(() => stopCli(cli, 1_000))
  const exited = await Promise.race([cli.exited, new Promise(resolve => setTimeout(resolve, 30_000, 'still running').unref())])
  t.equal(exited, 1)
  t.match(cli.stderr(), NOT_REGULAR)
})

t.test('a config file replaced by a named pipe is a rejected reload; the active config serves on', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  fifoAt(t, cf.file)
  const status = await Promise.race([gw.reloader.reload('admin'), new Promise(resolve => setTimeout(resolve, 10_000, 'no answer').unref())])
  t.match(status, { result: 'invalid', issues: [{ message: NOT_REGULAR }] })
  const res = await request(`${gw.url}/api`)
  t.equal(await res.body.text(), 'a', 'the active config serves on')
})
