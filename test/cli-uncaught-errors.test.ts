import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from './helpers/cli.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream } from './reload/helpers.ts'

// An error no code caught (a plugin's floating promise, a throw in its timer) ends the process, as
// Node means it to, but a fatal line of the log says why first. In worker mode the primary restarts the worker.

const FAULTS = {
  'a floating rejection': "{ onRequest () { void Promise.reject(new Error('floating boom')) } }",
  'a throw in a timer': "{ onRequest () { setTimeout(() => { throw new Error('timer boom') }, 10) } }"
}

async function gateway (t: Test, hooks: string, workers: number): Promise<{ cli: CliProcess, url: string }> {
  const a = await namedUpstream('a')
  const cf = await configFile('')
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  writeUserPlugin(cf.dir, 'careless', 500, hooks)
  await cf.write('loadPlugins: [ ./careless.ts ]\n' + gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { careless: {} } }')
    .replace('server:\n', `server:\n  workers: ${workers}\n`))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli, 5_000))
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening' && (workers === 1 || Array.isArray(l.workers)))
  t.ok(listening, `started (stderr: ${cli.stderr()})`)
  return { cli, url: String(listening?.url) }
}

const fatal = (l: Record<string, unknown>) => l.level === 60

for (const [fault, hooks] of Object.entries(FAULTS)) {
  t.test(`${fault} in a plugin: a fatal log line names the error, then the process exits non-zero`, async t => {
    const { cli, url } = await gateway(t, hooks, 1)
    const stdout = cli.child.stdout as Readable
    const read = once(stdout, 'close')
    await request(url).then(r => r.body.dump(), () => {})
    t.equal(await cli.exited, 1, 'exits 1, not kept running')
    await read
    const line = cli.lines.find(fatal) as { msg: string, origin: string, err: { message: string, stack: string } } | undefined
    const message = fault === 'a floating rejection' ? 'floating boom' : 'timer boom'
    t.equal(line?.err.message, message, `stdout: ${JSON.stringify(cli.lines.slice(-3))}`)
    t.match(line?.err.stack, /careless\.ts/, 'with its stack')
    t.equal(line?.origin, fault === 'a floating rejection' ? 'unhandledRejection' : 'uncaughtException')
    t.equal(cli.lines.at(-1), line, 'the last line')
  })
}

// What a plugin throws may be anything: pino's own error serializer threw on some of these (or
// recursed until the stack overflowed) and the process exited with no fatal line at all, or with
// no err, or with a 10 MB line. [the thrown expression, the err.message the line shows]
const ODD: Record<string, [string, string | RegExp]> = {
  'a plain object whose message getter throws': ["({ get message () { throw new Error('getter') } })", '[object Object]'],
  'an Error whose message getter throws': ["Object.defineProperty(new Error('hidden'), 'message', { get () { throw new Error('getter') } })", '(its message could not be read)'],
  'an Error whose stack getter throws': ["Object.defineProperty(new Error('stackless'), 'stack', { get () { throw new Error('getter') } })", 'stackless'],
  'a cause chain 20,000 deep': ["(() => { let e = new Error('end'); for (let i = 0; i < 20_000; i++) e = new Error('link', { cause: e }); return e })()", 'link'],
  'an AggregateError holding itself': ["(() => { const e = new AggregateError([], 'self'); e.errors.push(e); return e })()", 'self'],
  'a revoked Proxy': ['(() => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy })()', '[object]'],
  "Symbol('sym')": ["Symbol('sym')", 'Symbol(sym)'],
  'an Error with a 5 MB message': ["new Error('x'.repeat(5_000_000))", /^x{8192}…\(\+4991808 characters\)$/]
}

for (const [thrown, [expr, message]] of Object.entries(ODD)) {
  t.test(`${thrown} thrown in a timer: still a fatal line naming it, of bounded size`, async t => {
    const { cli, url } = await gateway(t, `{ onRequest () { setTimeout(() => { throw ${expr} }, 10) } }`, 1)
    const stdout = cli.child.stdout as Readable
    const read = once(stdout, 'close')
    await request(url).then(r => r.body.dump(), () => {})
    t.equal(await cli.exited, 1)
    await read
    const line = cli.lines.find(fatal) as { origin: string, err?: { message: string } } | undefined
    t.match(line?.err?.message, message, `stdout: ${JSON.stringify(cli.lines.slice(-3)).slice(0, 2_000)}`)
    t.equal(line?.origin, 'uncaughtException')
    t.ok(JSON.stringify(line).length < 64 * 1024, 'message and stack cut as other plugin errors are')
  })
}

t.test('in worker mode the crashed worker logs the fatal line and the primary restarts it', async t => {
  const { cli, url } = await gateway(t, FAULTS['a floating rejection'], 2)
  await request(url).then(r => r.body.dump(), () => {})
  const line = await cli.waitForLine(fatal, 20_000) as { worker?: number, err?: { message: string } } | undefined
  t.equal(line?.err?.message, 'floating boom', `stderr: ${cli.stderr()}`)
  t.type(line?.worker, 'number', 'names the worker')
  t.ok(await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.worker === line?.worker && l.code === 1, 20_000), 'restarted')
  t.equal(cli.child.exitCode, null, 'the gateway runs on')
  t.equal(await stopCli(cli), 0)
})
