import t from 'tap'
import { request } from 'undici'
import { CLI_FROM_SOURCES, runNode } from '../helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'
import { issues } from '../helpers/config-issues.ts'

// A malformed ${...} was quoted whole (cut at 40 characters) in its problem: `${ADMIN_TOKEN=token}`,
// whose default is likely the real token, reached validate, the reload answer, GET /config (read
// token) and the log; only a secret-looking name followed by a colon was hidden.
const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'
const ADMIN = 'admin:\n  listen: { host: 127.0.0.1, port: 0 }'
const FORMS = 'use ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message} or ${VAR?message} ($${ for a literal ${)'

t.test('validate quotes a malformed ${ as its name and operator only, under any key; of a secret value nothing', async t => {
  const cases: Array<[string, string, string, string]> = [
    // [key path, value written, secret in it, problem]
    ['admin.token', '${ADMIN_TOKEN=admintoken-0123456789abcdef}', 'admintoken-0123', `a \${ in this secret value is not supported: ${FORMS}`],
    ['admin.readToken', '${P6_TOK:?supersecretvalue123}', 'supersecretvalue', 'environment variable P6_TOK is not set (its message is not shown: the value is a secret)'],
    ['upstreams.a.targets[0].url', 'http://127.0.0.1:${PORT+plussecret-3141}', 'plussecret', `"\${PORT+...}" is not supported: ${FORMS}`],
    ['routes[0].name', '${ROUTE_NAME:-unclosedsecret-2718', 'unclosedsecret', '"${ROUTE_NAME:-..." has no closing "}" ($${ for a literal ${)'],
    ['routes[0].match.path', '/r${P6_PATH-${Y:=nestedsecret-1618}}', 'nestedsecret', `"\${Y:=...}" is not supported: ${FORMS}`],
    ['routes[0].plugins.request-termination.body', '${ badname-secret-1414 }', 'badname-secret', `"\${...}" is not supported: ${FORMS}`],
    ['routes[0].plugins.request-termination.headers.x-a', '${X:=headersecret-1732}', 'headersecret', `a \${ in this secret value is not supported: ${FORMS}`]
  ]
  const [token, read, url, name, path, body, header] = cases.map(c => `"${c[1]}"`)
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
${ADMIN}
  token: ${token}
  readToken: ${read}
upstreams:
  a: { targets: [ { url: ${url} } ] }
routes:
  - name: ${name}
    match: { path: ${path} }
    upstream: a
    plugins:
      request-termination: { status: 503, body: ${body}, headers: { x-a: ${header} } }
`)
  t.teardown(() => cf.remove())
  const run = await runNode([...CLI_FROM_SOURCES, 'validate', '-c', cf.file], { env: {} })
  t.equal(run.code, 1)
  const output = run.stdout + run.stderr
  for (const [key, , secret, problem] of cases) {
    t.match(output, `${key}: ${problem}`, `${key}: said`)
    t.notMatch(output, secret, `${key}: its secret not shown`)
  }
})

t.test('a reload rejected for a malformed ${ shows no secret: not in the answer, GET /config (read token) nor the log', async t => {
  const a = await namedUpstream('a')
  const base = gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /r }, upstream: a }')
  const admin = (token: string, read = `"${READ}"`) => `${ADMIN}\n  token: ${token}\n  readToken: ${read}`
  const cf = await configFile(base.replace(ADMIN, admin(`"${TOKEN}"`)))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const bad: Array<[string, string, string]> = [
    ['${NAME=default}', 'admintoken-0123', base.replace(ADMIN, admin('"${ADMIN_TOKEN=admintoken-0123456789abcdef}"'))],
    ['a name that does not look secret', 'supersecretvalue', base.replace(ADMIN, admin('"${P6_TOK:=supersecretvalue123}"'))],
    ['${NAME+word}', 'plussecret', base.replace(ADMIN, admin('"${ADMIN_TOKEN+plussecret-0123456789}"'))],
    ['${NAME:?message} under a secret key', 'messagesecret', base.replace(ADMIN, admin(`"${TOKEN}"`, '"${P6_READ:?messagesecret-0123456789}"'))],
    ['${NAME:-default without its }', 'unclosedsecret', base.replace(ADMIN, admin('"${ADMIN_TOKEN:-unclosedsecret-0123456789"'))],
    ['${NAME-default without its } under any key', 'routesecret', base.replace('name: r', 'name: "${ROUTE-routesecret-0123"')],
    ['a nested form under any key', 'nestedsecret', base.replace('path: /r', 'path: "/r${P-${Q:=nestedsecret-0123}}"')]
  ]
  for (const [what, secret, text] of bad) {
    const logged = gw.logs.length
    await cf.write(text)
    const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    const answer = await res.body.text()
    t.equal(res.statusCode, 422, `${what}: rejected`)
    t.match(answer, /is not supported|has no closing|is not set/, `${what}: the problem is said`)
    t.notMatch(answer, secret, `${what}: not in the reload answer`)
    const config = await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${READ}` } })
    const shown = await config.body.text()
    t.equal(config.statusCode, 200)
    t.match(shown, /"result":"invalid"/, `${what}: GET /config shows the rejected reload`)
    t.notMatch(shown, secret, `${what}: not in GET /config`)
    const lines = JSON.stringify(gw.logs.slice(logged))
    t.match(lines, 'config reload rejected')
    t.notMatch(lines, secret, `${what}: not in the log`)
  }
})

const tokenConfig = (token: string): string => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: ${token}
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`

t.test('under a secret\'s key, a "name" that may be the secret itself is not shown either', async t => {
  const [pasted] = await issues(t, tokenConfig('"$QWERTY12345SECRETTOKEN"'))
  t.notMatch(pasted, 'QWERTY12345', 'a token pasted with a leading $')
  t.match(pasted, 'this secret value, a $ and capitals, is not interpolated')
  const [braced] = await issues(t, tokenConfig('"${hunter2Secret}"'))
  t.notMatch(braced, 'hunter2', 'a token pasted into ${}')
  t.match(braced, 'an environment variable is not set (its name is not shown')
  const [asked] = await issues(t, tokenConfig('"${hunter2Secret:?no}"'))
  t.notMatch(asked, 'hunter2')
  t.match(asked, 'its name and message are not shown')
  const [named] = await issues(t, tokenConfig('"${ADMIN_TOKEN}"'))
  t.match(named, 'environment variable ADMIN_TOKEN is not set', 'a name written as variables are is shown: it is the help')
})
