import t from 'tap'
import type { Worker } from 'node:worker_threads'
import { OFF_THREAD_CHARS, parseConfig } from '../src/config/load.ts'
import { formatIssue } from '../src/config/config-error.ts'
import { CLI_FROM_SOURCES, runNode } from './helpers/run-cli.ts'
import { configFile, startFromFile } from './reload/helpers.ts'

// Not errors: what loads, said at load and by validate. A whole $$NAME once stayed "$$NAME" (a secret
// written so changed on upgrade without a word); a $NAME inside a value is that text, even with NAME set.
const config = ({ token = '"0123456789abcdef-token"', header = 'x', body = 'Back soon.' } = {}) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: ${token}
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      request-headers: { set: { authorization: "${header}" } }
      request-termination: { status: 503, body: "${body}" }
`

const VALUE = 'the-variables-value-42'
const ENV = { UPSTREAM_TOKEN: VALUE, HOME: '/home/gw' }

async function warnings (text: string, env: NodeJS.ProcessEnv = ENV): Promise<string[]> {
  return ((await parseConfig(text, 'gw.yaml', env)).warnings ?? []).map(formatIssue)
}

t.test('a $NAME inside a value whose NAME is set is warned of at its line, naming the variable (not in a secret), never its value; it still loads as written', async t => {
  const text = config({ header: 'Bearer $UPSTREAM_TOKEN', body: 'run $HOME/bin/x; $UNSET_ONE' })
  t.same(await warnings(text), [
    'gw.yaml:13:48 routes[0].plugins.request-headers.set.authorization: a $NAME in this value is kept as that text, though NAME is set: write ${NAME} for the variable\'s value',
    'gw.yaml:14:49 routes[0].plugins.request-termination.body: $HOME is kept as that text, though HOME is set: write ${HOME} for the variable\'s value'
  ])
  const loaded = await parseConfig(text, 'gw.yaml', ENV)
  t.same(loaded.config.routes[0]?.plugins?.['request-headers'], { set: { authorization: 'Bearer $UPSTREAM_TOKEN' } })
  t.same(await warnings(text, {}), [], 'no variable set: nothing to say')
  t.same(await warnings(config({ header: 'Bearer $$UPSTREAM_TOKEN \\\\$UPSTREAM_TOKEN ${UPSTREAM_TOKEN} $${UPSTREAM_TOKEN} $Upstream_token' })), [],
    'no warning for $$NAME, \\$NAME, ${NAME}, $${NAME}, or a name not in capitals')
})

t.test('a whole value $$NAME is warned of: it is now the text $NAME; of a secret, the key is named, not the value', async t => {
  t.same(await warnings(config({ token: '"$$ABCDEFGHIJKLMNOPQ"', body: '$$MAINTENANCE' })), [
    'gw.yaml:5:10 admin.token: this value, $$ and a name, is now read with one $ (a whole value $$NAME is the text $NAME; it was once kept as written): for the variable\'s value write ${NAME}',
    'gw.yaml:14:49 routes[0].plugins.request-termination.body: "$$MAINTENANCE" is now read as the text "$MAINTENANCE" (a whole value $$NAME is $NAME; it was once kept as written): for the variable\'s value write ${MAINTENANCE}'
  ])
  t.same(await warnings(config({ body: 'pa$$word $$NOT_WHOLE' })), [], 'a $$ inside a value stays as written: nothing to say')
})

t.test('a large config, parsed off the main thread, has the same warnings at the same places', async t => {
  const routes = Array.from({ length: 1500 }, (_, i) => `  - { name: pad${i}, match: { path: /pad${i}/* }, upstream: users }\n`).join('')
  const text = config({ header: 'Bearer $UPSTREAM_TOKEN', token: '"$$ABCDEFGHIJKLMNOPQ"' }) + routes
  t.ok(text.length > OFF_THREAD_CHARS)
  const answers: unknown[] = []
  const started = (w: Worker): void => { w.once('message', (m: unknown) => answers.push(m)) }
  process.on('worker', started)
  const found = await warnings(text).finally(() => process.off('worker', started))
  t.match(answers, [{ warnings: [{}, {}] }], 'the worker answered, with the warnings')
  t.equal(found.length, 2)
  t.same(found, await warnings(config({ header: 'Bearer $UPSTREAM_TOKEN', token: '"$$ABCDEFGHIJKLMNOPQ"' })))
})

t.test('portcullis validate prints the warnings and exits 0; start logs them; neither shows a value', async t => {
  const cf = await configFile(config({ header: 'Bearer $UPSTREAM_TOKEN', token: '"$$ABCDEFGHIJKLMNOPQ"' }))
  t.teardown(() => cf.remove())
  const run = await runNode([...CLI_FROM_SOURCES, 'validate', '-c', cf.file], { env: ENV })
  t.equal(run.code, 0)
  t.match(run.stderr, `${cf.file}:13:48 warning: routes[0].plugins.request-headers.set.authorization: a $NAME in this value is kept as that text, though NAME is set`)
  t.match(run.stderr, `${cf.file}:5:10 warning: admin.token: this value, $$ and a name, is now read with one $`)
  const gw = await startFromFile(cf.file, { env: ENV })
  t.teardown(() => gw.close())
  t.match(gw.logs.find(l => l.path === 'routes[0].plugins.request-headers.set.authorization'), { level: 40, file: cf.file, line: 13, col: 48, msg: /^a \$NAME in this value is kept as that text/ })
  t.match(gw.logs.find(l => l.path === 'admin.token'), { level: 40, line: 5, msg: /is now read with one \$/ })
  for (const secret of [VALUE, 'ABCDEFGHIJ']) t.notMatch(run.stdout + run.stderr + JSON.stringify(gw.logs), secret, `"${secret}" shown nowhere`)
})

t.test('a $NAME inside a secret whose NAME is set is warned of without naming it: the name is a piece of the secret', async t => {
  const found = await warnings(config({ token: '"abcdefghijk$HOME-xyz"', body: 'Back at $UPSTREAM_TOKEN' }))
  t.same(found, [
    'gw.yaml:5:10 admin.token: a $NAME in this value is kept as that text, though NAME is set: write ${NAME} for the variable\'s value',
    'gw.yaml:14:49 routes[0].plugins.request-termination.body: $UPSTREAM_TOKEN is kept as that text, though UPSTREAM_TOKEN is set: write ${UPSTREAM_TOKEN} for the variable\'s value'
  ], 'a value that is no secret still names its variable')
  for (const piece of ['HOME', 'abcdefghijk', 'xyz']) t.notMatch(found.join('\n'), piece, `"${piece}" shown nowhere`)
})
