import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issues } from './helpers/config-issues.ts'

// A key written wrong is one problem, and hides no other.
const SERVER = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n'

t.test('a misspelt top-level section is one problem, read as the one meant: the rest is still checked', async t => {
  t.same(await issues(t, SERVER + `upstream:
  users: { targets: [ { url: "127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: user
    stripPrefx: /a
`), [
    'gw.yaml:3:1 upstream: unknown key "upstream" (did you mean "upstreams"?)',
    'gw.yaml:4:30 upstream.users.targets[0].url: "127.0.0.1:3001" has no scheme: write http://127.0.0.1:3001 (or https://)',
    'gw.yaml:8:15 routes[0].upstream: unknown upstream "user" (did you mean "users"?); there are: users',
    'gw.yaml:9:5 routes[0].stripPrefx: unknown key "stripPrefx" (did you mean "stripPrefix"?)'
  ])
})

t.test('a misspelt required key further in is one problem, not also "missing required key"', async t => {
  t.same(await issues(t, SERVER + `upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstreem: users
`), ['gw.yaml:8:5 routes[0].upstreem: unknown key "upstreem" (did you mean "upstream"?)'])
})

t.test('a key that goes one level down says where: server.tls cert and key under certificates, a target url under targets', async t => {
  t.same(await issues(t, SERVER + `  tls: { cert: c.pem, key: k.pem }
upstreams:
  users: { url: "http://127.0.0.1:3001" }
routes: []
`), [
    'gw.yaml:3:10 server.tls.cert: unknown key "cert" (it goes under "certificates": certificates: [ { cert: ..., key: ... } ])',
    'gw.yaml:5:12 upstreams.users.url: unknown key "url" (it goes under "targets": targets: [ { url: ... } ])'
  ])
})

t.test('loadPlugins: a path that cannot be loaded says where it was looked for and why, not the loader\'s own path', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-first-hour-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'plugins'))
  writeFileSync(join(dir, 'plugins', 'mine.ts'), 'export default {}\n')
  const file = join(dir, 'gw.yaml')
  const found = await issues(t, SERVER + `upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes: []
loadPlugins:
  - plugins\\mine.ts
  - plugins/mine
  - plugins
`, {}, file)
  t.same(found, [
    `${file}:7:5 loadPlugins[0]: cannot load plugin "plugins\\mine.ts": no such file: ${dir}/plugins\\mine.ts (paths are written with "/" here, not "\\")`,
    `${file}:8:5 loadPlugins[1]: cannot load plugin "plugins/mine": no such file: ${dir}/plugins/mine (there is mine.ts: give the extension)`,
    `${file}:9:5 loadPlugins[2]: cannot load plugin "plugins": it is a directory, not a file: name the file in it`
  ])
  t.notMatch(found.join('\n'), /plugin-loader/)
})
