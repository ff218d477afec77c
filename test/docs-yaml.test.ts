import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { parseConfig } from '../src/config/load.ts'
import { ConfigError } from '../src/config/config-error.ts'

// Every ```yaml block of the README and docs/ is a config the real loader accepts: a complete one
// (it starts with `server:`) or, after an `<!-- fragment -->` comment, a part merged into BASE.
const root = new URL('..', import.meta.url)
// The variables the docs' examples name (keys of 16+ characters, a 32+ character HMAC secret).
const ENV = {
  ADMIN_TOKEN: 'a-token-of-at-least-16-chars',
  ADMIN_READ_TOKEN: 'a-read-token-of-16-chars',
  REDIS_PASSWORD: 'redis-password',
  ALICE_KEY: 'alice-key-0123456789',
  BOB_KEY: 'bob-key-0123456789ab',
  PARTNER_API_KEY: 'partner-key-0123456789',
  JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters!'
}
// Fragments' relative paths (loadPlugins) resolve against config/examples/, whose plugins/ holds the documented one.
const FRAGMENT_FILE = fileURLToPath(new URL('config/examples/fragment.yaml', root))
const BASE = {
  server: { listen: { host: '127.0.0.1', port: 0 } },
  upstreams: { users: { targets: [{ url: 'http://127.0.0.1:3001' }] } },
  routes: [{ name: 'base', match: { path: '/base/*' }, upstream: 'users' }]
}

interface Block { file: string, line: number, text: string, fragment: boolean }

function markdownFiles (): string[] {
  const docs = readdirSync(new URL('docs/', root), { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)
  return ['README.md', ...docs.sort()]
}

function yamlBlocks (file: string): Block[] {
  const lines = readFileSync(new URL(file, root), 'utf8').split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== '```yaml') continue
    const end = lines.indexOf('```', i + 1)
    const before = lines.slice(0, i).reverse().find(l => l.trim() !== '')
    blocks.push({ file, line: i + 1, text: lines.slice(i + 1, end).join('\n'), fragment: before?.trim() === '<!-- fragment -->' })
    i = end
  }
  return blocks
}

function merged (fragment: Record<string, unknown>): string {
  const config: Record<string, unknown> = { ...BASE, ...fragment }
  config.upstreams = { ...BASE.upstreams, ...(fragment.upstreams as object | undefined) }
  return stringify(config)
}

const blocks = markdownFiles().flatMap(yamlBlocks)

t.test('the docs have YAML blocks to check (the extraction works)', async t => {
  t.ok(blocks.filter(b => b.fragment).length >= 8, 'fragments found')
  t.ok(blocks.filter(b => !b.fragment).length >= 2, 'complete configs found')
  t.ok(blocks.some(b => b.file === 'README.md'), 'the README has one')
})

for (const b of blocks) {
  t.test(`${b.file}:${b.line} is a valid ${b.fragment ? 'config fragment' : 'config'}`, async t => {
    const complete = /^(#.*\n|\s*\n)*server:/.test(b.text)
    if (!b.fragment && !complete) {
      t.fail('a ```yaml block must start with `server:` (a complete config) or follow <!-- fragment -->')
      return
    }
    const text = b.fragment ? merged(parse(b.text) as Record<string, unknown>) : b.text
    try {
      const loaded = await parseConfig(text, b.fragment ? FRAGMENT_FILE : `${b.file}:${b.line}`, ENV)
      t.ok(loaded.config.routes.length > 0)
    } catch (err) {
      t.fail(err instanceof ConfigError ? err.message : String(err))
    }
  })
}

t.test('a fragment with a mistake fails (the merge does not hide it)', async t => {
  await t.rejects(parseConfig(merged({ routes: [{ name: 'x', match: { path: '/x' }, upstream: 'nope' }] }), FRAGMENT_FILE, ENV), ConfigError)
})

t.test('the plugin example in docs/plugins.md is the file config/examples/plugins/add-tenant/index.ts', async t => {
  const doc = readFileSync(new URL('docs/plugins.md', root), 'utf8')
  const code = /```ts\n([\s\S]*?)```/.exec(doc)?.[1]
  t.equal(code, readFileSync(new URL('config/examples/plugins/add-tenant/index.ts', root), 'utf8'))
})
