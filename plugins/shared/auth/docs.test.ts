import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseConfig } from '../../../src/config/load.ts'
import { startGateway } from '../../../test/helpers/gateway.ts'

const ENV = { PARTNER_API_KEY: 'partner-key-0123456789', ALICE_KEY: 'alice-key-0123456789', BOB_KEY: 'bob-key-0123456789', JWT_SECRET: 's'.repeat(40) }

/** The complete configs (```yaml blocks starting with server:) of a docs page. */
function examples (page: string): string[] {
  const text = readFileSync(new URL(`../../../docs/plugins/${page}.md`, import.meta.url), 'utf8')
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map(m => m[1] as string).filter(y => y.startsWith('server:'))
}

for (const [page, count, start] of [['jwt-auth', 2, false], ['key-auth', 1, true], ['basic-auth', 1, true], ['acl', 1, true]] as const) {
  t.test(`docs/plugins/${page}.md: every example is a valid config`, async t => {
    const found = examples(page)
    t.equal(found.length, count, 'the examples this test knows of')
    for (const [i, yaml] of found.entries()) {
      const loaded = await parseConfig(yaml, `${page}.md example ${i + 1}`, ENV)
      t.ok(loaded.config.routes.length > 0)
      // Plugin setup too (consumer references, hashes, keys), where no remote provider or file is involved.
      if (start) {
        const gw = await startGateway(yaml.replace('listen: { port: 8080 }', 'listen: { host: 127.0.0.1, port: 0 }'), { env: ENV })
        await gw.close()
      }
    }
  })
}
