import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const LOADER = new URL('../helpers/typescript-loader.mjs', import.meta.url).href
const PIPELINE = new URL('../../src/plugins/pipeline.ts', import.meta.url).href

// Plugins of equal priority, named so that Estonian collation (z between s and t) and code units disagree.
const SCRIPT = `import { describePipeline } from ${JSON.stringify(PIPELINE)}
const def = name => ({ name, priority: 500 })
const names = ['zeta', 'tau', 'sigma', 'a-b', 'ab']
const plugins = new Map(names.map(n => [n, def(n)]))
const uses = names.map(name => ({ name, config: {}, source: 'route' }))
console.log(JSON.stringify([describePipeline(uses, plugins).steps.map(s => s.name), ['zeta', 'tau'].sort((a, b) => a.localeCompare(b))]))
`

t.test('plugins of equal priority run by name in code-unit order, whatever the process locale', async t => {
  for (const locale of ['C.UTF-8', 'et_EE.UTF-8']) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', LOADER, '--input-type=module', '-e', SCRIPT],
      { env: { ...process.env, LANG: locale, LC_ALL: locale } })
    const [order, collated] = JSON.parse(stdout) as [string[], string[]]
    if (locale.startsWith('et')) t.same(collated, ['zeta', 'tau'], 'this locale does collate z before t (else the test proves nothing)')
    t.same(order, ['a-b', 'ab', 'sigma', 'tau', 'zeta'], `LANG=${locale}`)
  }
})
