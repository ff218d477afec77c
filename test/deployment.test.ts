import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { request } from 'undici'
import { spawnCli, spawnNode, stopCli } from './helpers/cli.ts'

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

/** The Dockerfile's ENV settings, as the image's processes get them. */
function imageEnv (): Record<string, string> {
  return Object.fromEntries([...dockerfile.matchAll(/^ENV\s+(\w+)=(\S+)\s*$/gm)].map(m => [m[1] as string, m[2] as string]))
}

const run = promisify(execFile)
/** Runs the HEALTHCHECK command as written; resolves with its exit code. */
async function healthCheck (command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  try {
    await run(command[0] as string, command.slice(1), { cwd: fileURLToPath(root), env: { ...process.env, NODE_OPTIONS: '', ...env }, timeout: 20_000 })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

t.test('the image\'s build compiles only what its build stage copies (a plugin file importing test/ once broke docker build)', async t => {
  const [, build = ''] = dockerfile.split(/^FROM /m)
  const copied = [...build.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+\s*$/gm)].flatMap(m => (m[1] as string).split(/\s+/))
  t.ok(copied.includes('src') && copied.includes('tsconfig.build.json'), 'the build stage copied as expected')
  const tsc = fileURLToPath(new URL('node_modules/typescript/bin/tsc', root))
  const { stdout } = await run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: fileURLToPath(root), maxBuffer: 16 * 1024 * 1024 })
  const ours = stdout.split('\n').map(f => f.trim()).filter(f => f.startsWith(fileURLToPath(root)) && !f.includes('/node_modules/'))
  t.ok(ours.length > 50, 'the build lists the project\'s files')
  const outside = ours.map(f => f.slice(fileURLToPath(root).length)).filter(f => !copied.some(c => f === c || f.startsWith(c + '/')))
  t.same(outside, [], 'every file the build compiles is in the build stage')
})

t.test('the image entry command serves with its ENV, the admin API answers outside loopback with the token, the health check follows the process', async t => {
  t.ok(existsSync(new URL('dist/src/cli/main.js', root)), 'the compiled build exists (npm ci builds it)')
  t.match(dockerfile, /^FROM node:\d+-bookworm-slim AS build$/m, 'the base image is pinned to a Node major')
  const [node, ...entry] = execForm('ENTRYPOINT')
  t.equal(node, 'node')
  const cmd = execForm('CMD')
  t.same(cmd.slice(0, 1), ['start'])
  const env: Record<string, string> = { ...imageEnv(), PORTCULLIS_STATE_FILE: join(mkdtempSync(join(tmpdir(), 'portcullis-image-')), 'state'), ADMIN_TOKEN: 'a-token-from-docker-run-e' }
  t.equal(env.ADMIN_HOST, '0.0.0.0', 'the image opens the admin listener beyond loopback')
  // Ports 0: the image's defaults (8080, 9901) may be taken on a developer's machine.
  const gw = spawnNode([...entry, ...cmd], { ...env, PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', NODE_OPTIONS: '' })
  t.teardown(() => stopCli(gw))
  const up = await gw.waitForLine(l => l.msg === 'gateway listening')
  t.ok(up, `listening (stderr: ${gw.stderr()})`)
  const admin = new URL(String(up?.admin))
  t.equal(admin.hostname, '0.0.0.0')
  const metrics = `http://127.0.0.1:${admin.port}/metrics`
  t.equal((await request(metrics)).statusCode, 401, 'the token is required')
  t.equal((await request(metrics, { headers: { authorization: 'Bearer a-token-from-docker-run-e' } })).statusCode, 200)
  const hc = execForm('HEALTHCHECK')
  t.equal(await healthCheck(hc, env), 0, 'HEALTHCHECK passes while it runs')
  // Stopped (hung), it still accepts connections (the kernel does): its admin /healthz tells.
  process.kill(gw.child.pid as number, 'SIGSTOP')
  try {
    t.equal(await healthCheck(hc, env), 1, 'HEALTHCHECK fails while the gateway is hung')
  } finally {
    process.kill(gw.child.pid as number, 'SIGCONT')
  }
  t.equal(await healthCheck(hc, env), 0, 'and passes again once it runs')
  t.equal(await stopCli(gw), 0, 'SIGTERM: exit 0')
  t.equal(await healthCheck(hc, env), 1, 'HEALTHCHECK fails once it is gone')
})

t.test('a state file that cannot be written is said on stderr; the gateway serves on (a read-only root once made every pod exit)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-image-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  a: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n')
  const gw = spawnCli(['start', '-c', file, '--no-watch'], { PORTCULLIS_STATE_FILE: join(dir, 'missing-dir', 'state') })
  t.teardown(() => stopCli(gw))
  const up = await gw.waitForLine(l => l.msg === 'gateway listening')
  t.ok(up, `listening (stderr: ${gw.stderr()})`)
  t.equal((await request(String(up?.url) + '/nothing')).statusCode, 404, 'it serves')
  t.match(gw.stderr(), /cannot write PORTCULLIS_STATE_FILE \(ENOENT/)
  t.equal(await stopCli(gw), 0, 'and stops cleanly')
})

t.test('the health check does not depend on the config: no admin listener, another port', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-image-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  a: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n')
  const env = { ...imageEnv(), PORTCULLIS_STATE_FILE: join(dir, 'state') }
  const [, ...entry] = execForm('ENTRYPOINT')
  const gw = spawnNode([...entry, 'start', '-c', file], { ...env, NODE_OPTIONS: '' })
  t.teardown(() => stopCli(gw))
  t.ok(await gw.waitForLine(l => l.msg === 'gateway listening'), `listening (stderr: ${gw.stderr()})`)
  t.equal(await healthCheck(execForm('HEALTHCHECK'), env), 0)
})
