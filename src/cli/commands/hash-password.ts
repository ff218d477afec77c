import { createInterface } from 'node:readline'
import { parseCommand } from '../options.ts'
import { DEFAULT_PARAMS, hashPassword } from '../../../plugins/basic-auth/password-hash.ts'

const HELP = `Usage: portcullis hash-password [--cost LN]

Reads a password from stdin (its first line, as UTF-8; typed without echo on a terminal) and prints its
scrypt hash, for consumers[].credentials.basic-auth.password:
  $scrypt$ln=${DEFAULT_PARAMS.ln},r=${DEFAULT_PARAMS.r},p=${DEFAULT_PARAMS.p}$<salt>$<hash>
--cost LN   scrypt cost N = 2^LN, 10 to 20 (default ${DEFAULT_PARAMS.ln}); every basic-auth request pays it once.
Example: printf '%s' "$PASSWORD" | portcullis hash-password`

/** The line typed, prompted on stderr and not echoed. */
function typedPassword (): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  process.stderr.write('Password: ')
  ;(rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {}
  return new Promise(resolve => {
    let line: string | undefined
    rl.once('line', l => { line = l; rl.close() })
    rl.once('close', () => { process.stderr.write('\n'); resolve(line ?? '') })
  })
}

const LF = 0x0a
const CR = 0x0d
// Fatal: readline read invalid bytes as U+FFFD and dropped an incomplete sequence at the end, so the
// hash was of another password than the one in the file. A BOM kept, as basic-auth keeps it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The first line of piped stdin, as its bytes: up to the first LF, or CRLF, or its end. */
async function pipedLine (): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    const lf = chunk.indexOf(LF)
    chunks.push(lf === -1 ? chunk : chunk.subarray(0, lf))
    if (lf !== -1) {
      const line = Buffer.concat(chunks)
      return line.at(-1) === CR ? line.subarray(0, -1) : line
    }
  }
  return Buffer.concat(chunks)
}

/** The password on stdin (its first line; typed without echo on a terminal), or why there is none. */
async function readPassword (): Promise<{ password: string } | { error: string }> {
  if (process.stdin.isTTY === true) return { password: await typedPassword() }
  const line = await pipedLine()
  // readline ended a line at a CR alone: `pass\rword` was hashed as `pass`.
  if (line.includes(CR)) return { error: 'the password holds a carriage return (CR) not followed by a line feed: no client sends one; remove it (a file with old Mac line ends?)' }
  try {
    return { password: utf8.decode(line) }
  } catch {
    return { error: 'the password is not valid UTF-8 (as clients send Basic credentials): save it as UTF-8' }
  }
}

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { options: { cost: { type: 'string' } }, config: false })
  if (typeof opts === 'number') return opts
  const { values } = opts
  const ln = values.cost === undefined ? DEFAULT_PARAMS.ln : Number(values.cost)
  if (!Number.isInteger(ln) || ln < 10 || ln > 20) { console.error(`--cost must be an integer from 10 to 20, got "${values.cost}"`); return 2 }
  const read = await readPassword()
  if ('error' in read) { console.error(`portcullis hash-password: ${read.error}; no hash made`); return 1 }
  if (read.password === '') { console.error('portcullis hash-password: no password on stdin'); return 1 }
  console.log(await hashPassword(read.password, { ...DEFAULT_PARAMS, ln }))
  return 0
}
