import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { parseOptions, USAGE, type BenchOptions } from '../bench/options.ts'
import { wrkSlice } from '../bench/wrk.ts'
import { noMetricsConfig, oneProcessConfig, plainConfig, reloadingConfig } from '../bench/targets/portcullis-config.ts'
import { parseConfig } from '../src/config/load.ts'

t.test('bench: seconds are whole (wrk refused -d0.5s with only "Command failed"), from flags and the environment', async t => {
  for (const [argv, env, flag] of [
    [['--slice', '0.5'], {}, '--slice'],
    [['--warmup', '1.5'], {}, '--warmup'],
    [[], { BENCH_SLICE: '2.5' }, '--slice'],
    [['--slice', '0'], {}, '--slice']
  ] as const) {
    t.throws(() => parseOptions([...argv], env), new RegExp(`^${flag} \\(BENCH_\\w+\\) must be an integer >= \\d \\(whole seconds`), JSON.stringify([argv, env]))
  }
  const o = parseOptions(['--quick', '--cases', 'c', '--rounds', '1', '--warmup', '0', '--slice', '1'], {}) as BenchOptions
  t.same([o.warmup, o.slice, o.rounds], [0, 1, 1], 'the smallest run is accepted')
})

t.test('bench: a failed wrk run says what wrk said, stdout included (Node\'s error has only its stderr)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-wrk-'))
  const saved = process.env.PATH
  t.teardown(() => { process.env.PATH = saved; rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, 'wrk'), '#!/bin/sh\necho "Usage: wrk <options> <url>"\nexit 1\n')
  chmodSync(join(dir, 'wrk'), 0o755)
  process.env.PATH = `${dir}${delimiter}${saved ?? ''}`
  await t.rejects(wrkSlice('http://127.0.0.1:1/', 1, 1), /^wrk failed \(.*wrk -t1 -c1 -d1s .*, exit 1\):\nUsage: wrk <options> <url>$/)
})

t.test('bench: the configs the targets run load (a rate limit past the stores\' bounds stopped npm run bench; h2Config needs the certificates the bench makes)', async t => {
  const ports = [9001, 9002, 9003]
  const configs = [plainConfig(ports, 1), plainConfig(ports, 3), oneProcessConfig(ports, undefined), oneProcessConfig(ports, 'redis://127.0.0.1:6390'),
    noMetricsConfig(ports, 'redis://127.0.0.1:6390'), reloadingConfig(ports, 1), reloadingConfig(ports, 2)]
  for (const [i, text] of configs.entries()) {
    await t.resolves(parseConfig(text, `bench-${i}.yaml`, {}), `config ${i}`)
  }
})

t.test('bench: --help names BENCH_LOADGEN, the choice of load generator docs/benchmarks.md gives', async t => {
  t.match(USAGE, /wrk when installed, else autocannon; BENCH_LOADGEN=wrk\|autocannon forces one/)
})
