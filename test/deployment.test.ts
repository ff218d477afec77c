import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { spawnNode, stopCli } from './helpers/cli.ts'

// Docker cannot run here: what the image runs (entry command, health check) is run as it is
// written in the Dockerfile, with the compiled build the image ships.
const root = new URL('..', import.meta.url)
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8')

/** The JSON (exec-form) argument list of a Dockerfile instruction; continuation lines joined. */
function execForm (instruction: string): string[] {
  const text = dockerfile.replace(/\\\n\s*/g, '')
  const m = new RegExp(`^${instruction}\\s+(?:.*?\\bCMD\\s+)?(\\[.*\\])\\s*$`, 'm').exec(text)
  if (m === null) throw new Error(`no exec-form ${instruction} in the Dockerfile`)
  return JSON.parse(m[1] as string) as string[]
}

const run = promisify(execFile)
/** Runs the HEALTHCHECK command (`node -e …`) against an admin port; resolves with its exit code. */
async function healthCheck (args: string[], adminPort: string): Promise<number> {
  try {
    await run(process.execPath, args, { env: { ...process.env, ADMIN_PORT: adminPort }, timeout: 10_000 })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

t.test('the image entry command serves, its health check passes, SIGTERM stops it with 0', async t => {
  t.ok(existsSync(new URL('dist/src/cli/main.js', root)), 'the compiled build exists (npm ci builds it)')
  const [node, ...entry] = execForm('ENTRYPOINT')
  t.equal(node, 'node')
  const cmd = execForm('CMD')
  t.same(cmd.slice(0, 1), ['start'])
  const [hcNode, ...hcArgs] = execForm('HEALTHCHECK')
  t.equal(hcNode, 'node')
  // Ports 0: the image's defaults (8080, 9901) may be taken on a developer's machine.
  const gw = spawnNode([...entry, ...cmd], { PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1' })
  t.teardown(() => stopCli(gw))
  const up = await gw.waitForLine(l => l.msg === 'gateway listening')
  t.ok(up, `listening (stderr: ${gw.stderr()})`)
  const adminPort = new URL(String(up?.admin)).port
  t.equal(await healthCheck(hcArgs, adminPort), 0, 'HEALTHCHECK passes while it runs')
  t.equal(await stopCli(gw), 0, 'SIGTERM: exit 0')
  t.equal(await healthCheck(hcArgs, adminPort), 1, 'HEALTHCHECK fails once it is gone')
})
