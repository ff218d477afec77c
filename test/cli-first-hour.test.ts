import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCliHere } from './helpers/run-cli.ts'

// What a newcomer's first hour with the CLI met: a warning explain kept to itself, a variable
// whose other half was not said, a config that does not exist taken as if it did.
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-cli-first-hour-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('explain prints the config\'s warnings to stderr as validate does; its answer and exit code are unchanged', async t => {
  const file = join(tempDir(t), 'gw.yaml')
  writeFileSync(file, `server: { listen: { port: 0 } }
upstreams: { users: { targets: [ { url: "http://127.0.0.1:3001" } ] } }
routes:
  - { name: users, match: { path: /users/ }, upstream: users }
`)
  const warning = `${file}:4:29 warning: routes[0].match.path: "/users/" matches only /users/ itself; for everything below it write /users/*\n`
  const validated = await runCliHere('validate', '-c', file)
  t.equal(validated.stderr, warning, 'as validate prints it')
  const below = await runCliHere('explain', '-c', file, 'GET', '/users/7')
  t.same([below.code, below.stderr], [1, warning])
  t.match(below.stdout, /^GET \/users\/7\n {2}→ 404 no_route/)
  const itself = await runCliHere('explain', '-c', file, 'GET', '/users/')
  t.same([itself.code, itself.stderr], [0, warning])
  t.match(itself.stdout, /^ {2}route {12}users /m)

  writeFileSync(file, 'server: { listen: { port: 0 } }\nupstreams: {}\nroutes: []\n')
  const none = await runCliHere('explain', '-c', file, 'GET', '/')
  t.same([none.code, none.stderr], [1, `${file}:3:1 warning: routes: no routes: every request is answered 404\n`])
})

t.test('healthcheck without PORTCULLIS_STATE_FILE says it is needed, at the same path, where start runs too; so does its --help', async t => {
  const saved = process.env.PORTCULLIS_STATE_FILE
  delete process.env.PORTCULLIS_STATE_FILE
  t.teardown(() => { if (saved !== undefined) process.env.PORTCULLIS_STATE_FILE = saved })
  const run = await runCliHere('healthcheck')
  t.same([run.code, run.stderr], [1, 'PORTCULLIS_STATE_FILE is not set: set it, to the same path, both here and where "portcullis start" runs (start writes the gateway\'s addresses to the file it names)\n'])
  const help = await runCliHere('healthcheck', '--help')
  t.match(help.stdout.replace(/\s+/g, ' '), 'set the variable, to the same path, both where "portcullis start" runs and where this runs')
})

t.test('plugin new -c FILE says when FILE does not exist (a note: the plugin may come before its config)', async t => {
  const dir = tempDir(t)
  const missing = join(dir, 'nope.yaml')
  const made = await runCliHere('plugin', 'new', 'stamp', '--dir', join(dir, 'plugins'), '-c', missing)
  t.equal(made.code, 0, made.stderr)
  t.equal(made.stderr, `note: ${missing} does not exist (yet): the loadPlugins line below is for a config written there\n`)
  writeFileSync(join(dir, 'gw.yaml'), 'routes: []\n')
  const there = await runCliHere('plugin', 'new', 'other', '--dir', join(dir, 'plugins'), '-c', join(dir, 'gw.yaml'))
  t.same([there.code, there.stderr], [0, ''], 'not for a file that exists')
})
