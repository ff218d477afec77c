// Mutation testing of the modules where a silent change hurts most (`npm run mutate`; not part of
// `npm test`: it takes hours on two cores). Narrow a run with --mutate, e.g.
//   npm run mutate -- --mutate src/upstreams/retry-budget.ts
// MUTATE_TESTS=test/upstreams,test/proxy-basics.test.ts narrows the test files run (the default is
// every in-process test), which shortens the initial run when only a few modules are mutated.
// Scores per module and the surviving mutants' verdicts: docs/testing.md.
import { readdirSync } from 'node:fs'

// Child processes (the CLI, workers) cover none of the mutated modules, and config parsing only
// path-pattern.ts's errors: for that file name test/config-validation.test.ts in MUTATE_TESTS.
const SKIP = new Set(['test/cli.test.ts', 'test/access-log-headers.test.ts', 'test/deployment.test.ts', 'test/schema-file.test.ts', 'test/config-validation.test.ts'])
const testsIn = (dir, recursive = false) => readdirSync(dir, { recursive }).map(f => `${dir}/${f}`)
  .filter(f => f.endsWith('.test.ts') && !SKIP.has(f))
const UNIT = ['test/upstreams/state-machines.test.ts', 'test/upstreams/balancers.test.ts', 'test/normalize-path.test.ts']
const chosen = process.env.MUTATE_TESTS?.split(',').flatMap(p => p.endsWith('.ts') ? [p] : testsIn(p, true))

// Test files run with plain node, not tap's runner: give them package.json's timeout (tap's default is 30 s).
process.env.TAP_TIMEOUT ??= '120'

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  // The tap runner runs each test file with plain node, not tap's loader: tsx compiles the TypeScript.
  tap: {
    // Files run in this order for a mutant, until one fails: the quick unit tests first.
    testFiles: chosen ?? [...new Set([...UNIT, ...testsIn('test'), ...testsIn('test/upstreams'), ...testsIn('test/metrics'), ...testsIn('plugins', true)])],
    nodeArgs: ['--import', 'tsx']
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  mutate: [
    'src/proxy/**/*.ts',
    'src/routing/**/*.ts',
    'src/upstreams/retry-policy.ts',
    'src/upstreams/retry-budget.ts',
    'src/upstreams/outlier-detection.ts',
    'src/upstreams/circuit-breaker.ts',
    'src/upstreams/balancers/**/*.ts',
    // Every built-in plugin; narrow a run to one with --mutate plugins/<name>/*.ts.
    'plugins/**/*.ts',
    '!plugins/**/*.test.ts',
    '!plugins/cache/shared-store-setup.ts'
  ],
  // Only the test files that ran a mutant's code run for it.
  coverageAnalysis: 'perTest',
  // Two shared cores: one mutant at a time, so timing-sensitive tests keep their margins.
  concurrency: 1,
  timeoutFactor: 2,
  // The initial run of every test file, with coverage, on a busy machine.
  dryRunTimeoutMinutes: 30,
  timeoutMS: 15_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  ignorePatterns: ['dist', '.tap', 'reports', 'bench'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always'
}
