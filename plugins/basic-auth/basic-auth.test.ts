import t from 'tap'
import { spawn } from 'node:child_process'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { CLI_FROM_SOURCES } from '../../test/helpers/run-cli.ts'
import { parseConfig } from '../../src/config/load.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Made once with `printf 'hunter2-secret' | portcullis hash-password`.
const ALICE_HASH = '$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg'

function hashWithCli (password: string): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn(process.execPath, [...CLI_FROM_SOURCES, 'hash-password', '--cost', '12'], { cwd: new URL('../..', import.meta.url) })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  child.stdin.end(`${password}\n`)
  return new Promise(resolve => child.on('close', code => resolve({ code, out, err })))
}

const cli = await hashWithCli('b0b-has-a-long-password')
const up = await startUpstream()
t.teardown(() => up.close())
const gw = await startGateway(`
consumers:
  - { id: alice, groups: [admins], credentials: { basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: carol, credentials: { basic-auth: { username: c, password: "${ALICE_HASH}" } } }
  - { id: bob, credentials: { basic-auth: { username: bob, password: "${cli.out.trim()}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  # Some 60 wrong passwords from one address below: past the default failure limit (failures.test.ts).
  - { name: basic, match: { path: /basic }, upstream: up, plugins: { basic-auth: { realm: "staff area", failures: false } } }
  - { name: hidden, match: { path: /hidden }, upstream: up, plugins: { basic-auth: { hideCredentials: true } } }
`)
t.teardown(() => gw.close())

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
async function call (path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) as { headers: Record<string, string>, error?: string, message?: string, requestId?: string } }
}

t.test('portcullis hash-password prints a scrypt PHC string', async t => {
  t.equal(cli.code, 0, cli.err)
  t.match(cli.out, /^\$scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}\n$/)
})

t.test('right password', async t => {
  const r = await call('/basic', { authorization: basic('alice', 'hunter2-secret') })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.equal(r.json.headers['x-consumer-groups'], 'admins')
  t.equal(r.json.headers.authorization, basic('alice', 'hunter2-secret'), 'kept without hideCredentials')
  const bob = await call('/hidden', { authorization: basic('bob', 'b0b-has-a-long-password') })
  t.equal(bob.status, 200, 'a hash made by the CLI verifies')
  t.equal(bob.json.headers['x-consumer-id'], 'bob')
  t.equal(bob.json.headers.authorization, undefined, 'hideCredentials')
})

t.test('wrong password, unknown user, missing and malformed credentials: 401 Basic', async t => {
  for (const [what, authorization, error] of [
    ['wrong password', basic('alice', 'hunter3-secret'), 'invalid_credentials'],
    ['unknown user', basic('mallory', 'hunter2-secret'), 'invalid_credentials'],
    ['no colon', `Basic ${Buffer.from('alice').toString('base64')}`, 'invalid_credentials'],
    ['not base64', 'Basic !!!', 'invalid_credentials'],
    ['missing', undefined, 'unauthorized'],
    ['another scheme', 'Bearer abc', 'unauthorized']
  ] as const) {
    const r = await call('/basic', authorization === undefined ? {} : { authorization })
    t.equal(r.status, 401, what)
    t.equal(r.headers['www-authenticate'], 'Basic realm="staff area", charset="UTF-8"', what)
    t.equal(r.json.error, error, what)
    t.notOk(r.text.includes('hunter'), `${what}: no password in the body`)
  }
  const unknown = await call('/basic', { authorization: basic('mallory', 'x') })
  const wrong = await call('/basic', { authorization: basic('alice', 'x') })
  t.equal(unknown.json.message, wrong.json.message, 'the same answer whether or not the user exists')
})

t.test('malformed credentials are told apart from wrong ones (message and log reason), never admitted', async t => {
  const right = Buffer.from('alice:hunter2-secret').toString('base64')
  const MALFORMED = 'the Basic credentials are malformed (base64 of user:password)'
  const INVALID = 'the user name or password is not valid'
  for (const [what, credentials, message, reason] of [
    ['a character before the base64', `@${right}`, MALFORMED, 'malformed'],
    ['a character after it', `${right}!`, MALFORMED, 'malformed'],
    ['no user name', Buffer.from(':hunter2-secret').toString('base64'), MALFORMED, 'malformed'],
    ['no colon', Buffer.from('alice').toString('base64'), MALFORMED, 'malformed'],
    ['wrong password', Buffer.from('alice:hunter3-secret').toString('base64'), INVALID, 'invalid_password'],
    ['unknown user', Buffer.from('mallory:hunter2-secret').toString('base64'), INVALID, 'invalid_password']
  ] as const) {
    const r = await call('/basic', { authorization: `Basic ${credentials}` })
    t.equal(r.status, 401, what)
    t.equal(r.json.message, message, what)
    t.ok(await waitForLog(gw.logs, { requestId: r.json.requestId, reason, msg: `basic-auth: ${message}` }), `${what}: logged as ${reason}`)
  }
})

t.test('a one-character user name; the same user name for two consumers is a config error', async t => {
  const c = await call('/basic', { authorization: basic('c', 'hunter2-secret') })
  t.equal(c.status, 200)
  t.equal(c.json.headers['x-consumer-id'], 'carol')
  await t.rejects(startGateway(`
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: alice2, credentials: { basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes: []
`), /consumers\[1\]\.credentials\.basic-auth: the same basic-auth credential is given to consumers\[0\] \("alice"\)/)
})

t.test('a hash whose N scrypt refuses for its r (ln 16 and up with r=1) is a config error at its key: it once ended the process at start', async t => {
  const hash = (params: string) => `$scrypt$${params}$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg`
  const load = (params: string) => parseConfig(`server: { listen: { port: 0 } }
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${hash(params)}" } } }
upstreams: {}
routes: []
`, 'gw.yaml', {}).then(() => 'loads', (err: Error) => err.message)
  t.match(await load('ln=16,r=1,p=1'), /gw\.yaml:3:\d+ consumers\[0\]\.credentials\.basic-auth\.password: has ln 16 or more with r=1: scrypt needs N = 2\^ln below 2\^\(16·r\), so no password could be checked; make the hash with `portcullis hash-password` \(r=8\)$/)
  t.match(await load('ln=20,r=1,p=16'), /consumers\[0\]\.credentials\.basic-auth\.password: has ln 16 or more with r=1/)
  t.equal(await load('ln=15,r=1,p=1'), 'loads')
  t.equal(await load('ln=16,r=2,p=1'), 'loads')
  t.match(await load('ln=9,r=1,p=1'), /password: must be a scrypt hash \(\$scrypt\$ln=\.\.,r=\.\.,p=\.\.\$salt\$hash\): make one with `portcullis hash-password`$/, 'a malformed one: the one message')
})

t.test('spoofed identity headers are replaced', async t => {
  const r = await call('/basic', { authorization: basic('alice', 'hunter2-secret'), 'x-consumer-id': 'root', 'x-consumer-groups': 'root' })
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.equal(r.json.headers['x-consumer-groups'], 'admins')
})

t.test('an unknown user costs a password check, as a wrong password does', async t => {
  // Not a performance goal but a safety property: without the stand-in hash an unknown user would
  // answer some 100 times faster than a wrong password. The band is wide, and a round spoilt by a
  // loaded machine (seen at 0.36 with a load of 16 on 2 cores) is measured again, up to 3 rounds.
  const time = async (authorization: string) => {
    const start = performance.now()
    const status = (await call('/basic', { authorization })).status
    if (status !== 401) throw new Error(`expected 401, got ${status}`)
    return performance.now() - start
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number
  const rounds: string[] = []
  let within = false
  for (let round = 0; round < 3 && !within; round++) {
    const unknown: number[] = []
    const wrong: number[] = []
    for (let i = 0; i < 8; i++) {
      unknown.push(await time(basic(`nobody-${round}-${i}`, 'guess')))
      wrong.push(await time(basic('alice', `guess-${round}-${i}`)))
    }
    const ratio = median(unknown) / median(wrong)
    rounds.push(`${ratio.toFixed(2)} (medians ${median(unknown).toFixed(1)} / ${median(wrong).toFixed(1)} ms)`)
    within = ratio > 0.25 && ratio < 4
  }
  t.ok(within, `unknown user / wrong password time: ${rounds.join(', ')}`)
})
