import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, runCli } from './helpers/run-cli.ts'

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
