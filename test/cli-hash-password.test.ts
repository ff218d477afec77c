import t from 'tap'
import { spawn } from 'node:child_process'
import { checkPassword, parseHash } from '../plugins/basic-auth/password-hash.ts'
import { CLI_FROM_SOURCES, ROOT } from './helpers/run-cli.ts'

/** `portcullis hash-password --cost 10` with `stdin` piped in as these bytes. */
function hashFrom (stdin: Buffer): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn(process.execPath, [...CLI_FROM_SOURCES, 'hash-password', '--cost', '10'], { cwd: ROOT })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  child.stdin.end(stdin)
  return new Promise(resolve => child.on('close', code => resolve({ code, out, err })))
}

const bytes = (text: string) => Buffer.from(text, 'latin1')

t.test('hash-password: the first line\'s bytes as UTF-8, one LF or CRLF after it left out', async t => {
  for (const [stdin, password] of [
    ['pass word', 'pass word'],
    ['pass word\n', 'pass word'],
    ['pass word\r\n', 'pass word'],
    ['pass word\r\n\r\n', 'pass word'],
    ['caf\xc3\xa9\n', 'café'],
    ['\xef\xbb\xbfpass', '\uFEFFpass']
  ] as const) {
    const run = await hashFrom(bytes(stdin))
    t.equal(run.code, 0, `${JSON.stringify(stdin)}: ${run.err}`)
    t.ok(await checkPassword(password, parseHash(run.out.trim())), `${JSON.stringify(stdin)} is hashed as ${JSON.stringify(password)}`)
  }
})

// readline read invalid bytes as U+FFFD, dropped an incomplete sequence at the end and ended a line
// at a CR alone: the hash was of another password than the one given, and nothing said so.
t.test('hash-password: invalid UTF-8 or a CR alone is refused, with no hash', async t => {
  for (const [stdin, why] of [
    ['caf\xff', /not valid UTF-8/],
    ['caf\x80\n', /not valid UTF-8/],
    ['caf\xc3', /not valid UTF-8/],
    ['pass\rword', /carriage return \(CR\)/],
    ['pass\r', /carriage return \(CR\)/],
    ['pass\r\r\n', /carriage return \(CR\)/]
  ] as const) {
    const run = await hashFrom(bytes(stdin))
    t.equal(run.code, 1, JSON.stringify(stdin))
    t.equal(run.out, '', 'no hash printed')
    t.match(run.err, new RegExp(`^portcullis hash-password: .*${why.source}.*; no hash made\\n$`), JSON.stringify(stdin))
  }
})
