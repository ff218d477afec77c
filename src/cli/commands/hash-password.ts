import { createInterface } from 'node:readline'
import { parseCommand } from '../options.ts'
import { DEFAULT_PARAMS, hashPassword } from '../../../plugins/basic-auth/password-hash.ts'

const HELP = `Usage: portcullis hash-password [--cost LN]

Reads a password from stdin (its first line; typed without echo on a terminal) and prints its
scrypt hash, for consumers[].credentials.basic-auth.password:
  $scrypt$ln=${DEFAULT_PARAMS.ln},r=${DEFAULT_PARAMS.r},p=${DEFAULT_PARAMS.p}$<salt>$<hash>
--cost LN   scrypt cost N = 2^LN, 10 to 20 (default ${DEFAULT_PARAMS.ln}); every basic-auth request pays it once.
Example: printf '%s' "$PASSWORD" | portcullis hash-password`

/** The first line of stdin; on a terminal, prompted on stderr and not echoed. */
function readPassword (): Promise<string> {
  const tty = process.stdin.isTTY === true
  const rl = createInterface({ input: process.stdin, output: tty ? process.stderr : undefined, terminal: tty })
  if (tty) {
    process.stderr.write('Password: ')
    ;(rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {}
  }
  return new Promise(resolve => {
    let line: string | undefined
    rl.once('line', l => { line = l; rl.close() })
    rl.once('close', () => { if (tty) process.stderr.write('\n'); resolve(line ?? '') })
  })
}

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { options: { cost: { type: 'string' } }, config: false })
  if (typeof opts === 'number') return opts
  const { values } = opts
  const ln = values.cost === undefined ? DEFAULT_PARAMS.ln : Number(values.cost)
  if (!Number.isInteger(ln) || ln < 10 || ln > 20) { console.error(`--cost must be an integer from 10 to 20, got "${values.cost}"`); return 2 }
  const password = await readPassword()
  if (password === '') { console.error('portcullis hash-password: no password on stdin'); return 1 }
  console.log(await hashPassword(password, { ...DEFAULT_PARAMS, ln }))
  return 0
}
