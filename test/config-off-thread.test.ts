import t from 'tap'
import type { Worker } from 'node:worker_threads'
import { OFF_THREAD_CHARS, parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'

// Lines 1-5; routes written after it start on line 6.
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "\${USERS_URL:-http://127.0.0.1:3001}" } ] }
routes:
`

/** Valid routes, appended to a config: it is then large enough to be parsed off the main thread, its lines unmoved. */
const PADDING = Array.from({ length: 600 }, (_, i) => `  - name: pad${i}
    match: { path: /pad${i}/*, methods: [GET] }
    upstream: users
    plugins:
      response-headers: { set: { x-pad: "${i}" } }
`).join('')

/** What each parse worker started during `run` answered (undefined: it found a problem, or died). */
async function workerAnswers (run: () => Promise<unknown>, onWorker?: (w: Worker) => void): Promise<unknown[]> {
  const answers: unknown[] = []
  const started = (w: Worker): void => {
    w.once('message', (m: unknown) => answers.push(m))
    onWorker?.(w)
  }
  process.on('worker', started)
  try {
    await run().catch(() => {})
  } finally {
    process.off('worker', started)
  }
  return answers
}

t.test('a large config is parsed in a worker thread, ${VAR}s replaced there; a small one on the main thread', async t => {
  t.ok(PADDING.length > OFF_THREAD_CHARS)
  let loaded
  const answers = await workerAnswers(async () => { loaded = await parseConfig(HEAD + PADDING, 'gw.yaml', { USERS_URL: 'http://10.0.0.1:80' }) })
  t.equal(answers.length, 1, 'one worker')
  const answer = answers[0] as { data: { routes: unknown[], upstreams: { users: { targets: Array<{ url: string }> } } } }
  t.equal(answer.data.routes.length, 600)
  t.equal(answer.data.upstreams.users.targets[0]?.url, 'http://10.0.0.1:80')
  t.equal(loaded!.config.upstreams.users?.targets[0]?.url, 'http://10.0.0.1:80')
  t.equal(loaded!.config.routes[599]?.name, 'pad599')
  t.same(await workerAnswers(() => parseConfig(HEAD + PADDING.slice(0, 2000), 'gw.yaml', {})), [], 'no worker for a small config')
})

t.test('a worker that dies without an answer: the config is parsed on the main thread', async t => {
  let loaded
  let ended = 0
  const answers = await workerAnswers(async () => { loaded = await parseConfig(HEAD + PADDING, 'gw.yaml', {}) }, w => { ended++; void w.terminate() })
  t.equal(ended, 1)
  t.same(answers, [])
  t.equal(loaded!.config.routes.length, 600)
})

t.test('a large invalid config: every problem reported as for a small one, at the same line and column', async t => {
  const cases: Record<string, { text: string, env?: NodeJS.ProcessEnv, answered: boolean }> = {
    'checks and schema': {
      answered: true,
      text: `  - name: a
    match: { path: /a }
    upstream: user
  - name: b
    match: { path: /b, method: [GET] }
    upstreem: users
  - name: c
    match: { path: /c }
    upstream: users
    plugins:
      response-headers: { set: { x-a: } }
`
    },
    'an unset variable': {
      answered: false,
      text: `  - name: a
    match: { path: "\${PREFIX}/a" }
    upstream: users
`
    },
    'a syntax error': {
      answered: false,
      text: `  - name: a
    match: { path: /a }
     upstream: users
`
    },
    'an alias inside its node': {
      answered: false,
      text: `  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      ip-filter:
        allow: &list
          - 10.0.0.1
          - *list
`
    }
  }
  for (const [name, c] of Object.entries(cases)) {
    const small = await issues(t, HEAD + c.text, c.env)
    t.ok(small.length > 0, name)
    let large: string[] = []
    const answers = await workerAnswers(async () => { large = await issues(t, HEAD + c.text + PADDING, c.env) })
    t.same(large, small, name)
    t.equal(answers.length, 1, `${name}: parsed in a worker first`)
    t.equal(answers[0] !== undefined, c.answered, `${name}: the worker ${c.answered ? 'answered' : 'found the problem'}`)
  }
})
