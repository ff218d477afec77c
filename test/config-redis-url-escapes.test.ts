import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.ts'
import { issues } from './helpers/config-issues.ts'
import { runCli } from './helpers/run-cli.ts'

// The Redis client decodes the URL's user and password: a malformed %-escape there passed
// validate, and `start` died creating the store (URIError: URI malformed) with a stack trace.
const config = (url: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  r: { type: redis, url: "${url}" }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: limited, match: { path: /* }, upstream: up, plugins: { rate-limit: { store: r, limits: [ { name: l, requests: 10, window: 1s } ] } } }
`

t.test('a malformed %-escape in a Redis URL\'s user or password is a config error at the url, the secret never quoted', async t => {
  const cases = {
    'redis://u:PW%ZZSECRET@127.0.0.1:1': 'password',
    'redis://u:PW%SECRET@127.0.0.1:1': 'password',
    'rediss://u:PW%C3%28SECRET@127.0.0.1:1/0': 'password',
    'redis://US%ZZSECRET:pw@127.0.0.1:1': 'user'
  }
  for (const [url, part] of Object.entries(cases)) {
    const found = await issues(t, config(url))
    const key = part === 'user' ? 'username' : 'password'
    t.same(found, [`gw.yaml:4:26 stores.r.url: "${url.replace(/\/\/.*@/, '//[redacted]@')}": the ${part} has a % that is no percent-escape of UTF-8: write % itself as %25, or give the ${part} in the ${key} key`], url)
    t.notMatch(found.join('\n'), /SECRET/, `${url}: no secret quoted`)
  }
  await t.resolves(parseConfig(config('redis://u%40x:PW%25SECRET%C3%A9@127.0.0.1:1'), 'gw.yaml'), 'well-formed escapes are taken')
})

t.test('start refuses such a URL as a config error, not with a stack trace', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-redis-url-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'gw.yaml')
  await writeFile(file, config('redis://u:PW%ZZSECRET@127.0.0.1:1'))
  for (const command of ['validate', 'start']) {
    const run = await runCli(command, '-c', file)
    t.equal(run.code, 1, `${command}: exits 1`)
    t.match(run.stderr, /gw\.yaml:4:26 stores\.r\.url: "redis:\/\/\[redacted\]@127\.0\.0\.1:1": the password has a % that is no percent-escape/, `${command}: the problem at the url`)
    t.notMatch(run.stderr + run.stdout, /SECRET|URI malformed|\n\s+at /, `${command}: no secret, no stack trace`)
  }
})
