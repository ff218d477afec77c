import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'

// `$NAME` without braces is no variable: a secret written so was the literal text, which anyone
// reading the file could send.
const HASH = '$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg'

const config = ({ token = '"${ADMIN_TOKEN:-0123456789abcdef}"', key = '"0123456789abcdef0123"', url = '"http://127.0.0.1:3001"', header = 'x', origin = 'https://app.example.com' } = {}) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: ${token}
consumers:
  - id: bot
    credentials:
      key-auth: { keys: [ ${key} ] }
      basic-auth: { username: bot, password: "${HASH}" }
upstreams:
  users: { targets: [ { url: ${url} } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      key-auth: {}
      request-headers: { set: { x-h: "${header}" } }
      cors: { origins: [ "${origin}" ] }
`

const ENV = { PORTCULLIS_ADMIN_TOKEN: 'a-real-token-0123456789', API_KEY: 'a-real-key-0123456789', USERS_HOST: '127.0.0.1' }
const HINT = (name: string) => `$${name} is not interpolated: write \${${name}} (or $$${name} for the text $${name})`

t.test('a whole value $NAME is an error at its line, set or not: admin token, key-auth key, target URL', async t => {
  for (const env of [ENV, {}]) {
    t.same(await issues(t, config({ token: '"$PORTCULLIS_ADMIN_TOKEN"', key: '"$API_KEY"', url: '"$USERS_URL"' }), env), [
      `gw.yaml:5:10 admin.token: ${HINT('PORTCULLIS_ADMIN_TOKEN')}`,
      `gw.yaml:9:27 consumers[0].credentials.key-auth.keys[0]: ${HINT('API_KEY')}`,
      `gw.yaml:12:30 upstreams.users.targets[0].url: ${HINT('USERS_URL')}`
    ])
  }
})

t.test('a $NAME inside a value is kept as written, NAME set or not: a config is valid in every environment (a script\'s $HOME, a secret)', async t => {
  for (const env of [ENV, {}]) {
    const loaded = await parseConfig(config({ header: 'Bearer $API_KEY $USERS_HOST' }), 'gw.yaml', env)
    t.same(loaded.config.routes[0]?.plugins?.['request-headers'], { set: { 'x-h': 'Bearer $API_KEY $USERS_HOST' } })
  }
})

t.test('a whole value $$NAME is the text $NAME; other $s load as written (a $$ inside a value too): a scrypt hash, a regex, a $ before lower case, \\$NAME, $${', async t => {
  const loaded = await parseConfig(config({ token: '"$$PORTCULLIS_ADMIN_TOKEN"', key: '"key-with-$$API_KEY-in-it"', header: 'pa$$word $lower $2b$10$AB.cd \\\\$API_KEY $${API_KEY}', origin: '/^https:\\\\/\\\\/pr-\\\\d+\\\\.preview\\\\.dev$/' }), 'gw.yaml', ENV)
  t.equal(loaded.config.admin?.token, '$PORTCULLIS_ADMIN_TOKEN')
  const consumer = loaded.config.consumers?.[0] as { credentials: Record<string, { keys?: string[], password?: string }> }
  t.same(consumer.credentials['key-auth']?.keys, ['key-with-$$API_KEY-in-it'], 'a secret holding $$ keeps it')
  t.equal(consumer.credentials['basic-auth']?.password, HASH)
  const plugins = loaded.config.routes[0]?.plugins as Record<string, unknown>
  t.same(plugins['request-headers'], { set: { 'x-h': 'pa$$word $lower $2b$10$AB.cd \\$API_KEY ${API_KEY}' } })
  t.match(plugins.cors, { origins: ['/^https:\\/\\/pr-\\d+\\.preview\\.dev$/'] })
})

t.test('a target URL that is a variable in lower case says how a variable is written, not "http://$..."', async t => {
  t.same(await issues(t, config({ url: '"$users_url"' })), [
    'gw.yaml:12:30 upstreams.users.targets[0].url: "$users_url" is no URL: a variable is written ${users_url}'
  ])
})
