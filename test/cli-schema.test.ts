import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, ROOT, runCli } from './helpers/run-cli.ts'

t.test('schema prints the JSON Schema the package ships; --path says where that file is', async t => {
  const shipped = readFileSync(join(ROOT, 'config/gateway.schema.json'), 'utf8')
  const printed = await runCli('schema')
  t.equal(printed.code, 0)
  t.equal(printed.stdout, shipped)
  t.match(JSON.parse(printed.stdout), { title: 'Portcullis gateway configuration' })
  const path = await runCli('schema', '--path')
  t.equal(path.code, 0)
  t.equal(path.stdout, join(ROOT, 'config/gateway.schema.json') + '\n')
})

t.test('a reader that stops early (schema | head -c 100) ends the command quietly, with no EPIPE trace', async t => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'))
  // A shell's pipe (64 KB), as a user's: the schema (some 200 KB) is still being written when head exits.
  const child = spawn('bash', ['-c', '"$@" | head -c 100 >/dev/null; exit "${PIPESTATUS[0]}"', 'bash', process.execPath, ...CLI_FROM_SOURCES, 'schema'], { cwd: ROOT, env })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(stderr, '')
  t.equal(code, 0)
})
