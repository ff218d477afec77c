import t from 'tap'
import { request } from 'undici'
import { runCliHere } from '../helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

const SECRET = 'SECRET10'

// The reload answer and lastReload hid it, but the log line and `portcullis validate` quoted it.
t.test('a config problem quoting a secret query value hides it everywhere: the reload answer, lastReload, the log, validate', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /r }, upstream: a }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(gatewayYaml({ a: [a.url] }, `  - { name: r, match: { path: "/c?token=${SECRET}" }, upstream: a }`))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422)
  t.match(answer, 'token=[redacted]', 'the problem is shown, its value hidden')
  t.notMatch(answer, SECRET)
  t.notMatch(await (await request(`${gw.adminUrl}/config`)).body.text(), SECRET, 'lastReload')
  const rejected = gw.logs.find(l => String(l.msg).startsWith('config reload rejected'))
  t.match(rejected?.msg, 'token=[redacted]', 'logged')
  t.notMatch(JSON.stringify(gw.logs), SECRET, 'in no log line')

  const validate = await runCliHere('validate', '-c', cf.file)
  t.equal(validate.code, 1)
  t.match(validate.stderr, 'token=[redacted]')
  t.notMatch(validate.stdout + validate.stderr, SECRET, 'nor by portcullis validate')
})
