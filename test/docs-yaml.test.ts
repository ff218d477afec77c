import t from 'tap'
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { parseConfig } from '../src/config/load.ts'
import { ConfigError } from '../src/config/config-error.ts'
import { createTestCa, type Issued } from './helpers/certs.ts'

// Every ```yaml block of the README and docs/ is a config the real loader accepts: a complete one
// (it starts with `server:`) or, after an `<!-- fragment -->` comment, a part merged into BASE.
// A ```yaml certs fragment names certificate files: it is loaded beside throw-away ones at those paths.
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

interface Block { file: string, line: number, text: string, fragment: boolean, certs: boolean }

function markdownFiles (): string[] {
  const docs = readdirSync(new URL('docs/', root), { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)
  return ['README.md', ...docs.sort()]
}

function yamlBlocks (file: string): Block[] {
  const lines = readFileSync(new URL(file, root), 'utf8').split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i]?.trim()
    if (fence !== '```yaml' && fence !== '```yaml certs') continue
    const end = lines.indexOf('```', i + 1)
    const before = lines.slice(0, i).reverse().find(l => l.trim() !== '')
    blocks.push({ file, line: i + 1, text: lines.slice(i + 1, end).join('\n'), fragment: before?.trim() === '<!-- fragment -->', certs: fence !== '```yaml' })
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

for (const b of blocks.filter(b => !b.certs)) {
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

t.test('each ```yaml certs fragment loads with its files in place', async t => {
  const certs = blocks.filter(b => b.certs)
  t.ok(certs.filter(b => b.file === 'docs/edge.md').length >= 4, 'blocks found')
  const ca = createTestCa('Docs Test CA', fn => t.teardown(fn))
  const dir = dirname(ca.certFile)
  const leaves = new Map<string, Issued>()
  for (const b of certs) {
    for (const path of new Set(b.text.match(/certs\/[\w.-]+/g))) {
      const to = join(dir, path)
      mkdirSync(dirname(to), { recursive: true })
      const name = path.replace(/^certs\/|\.\w+$/g, '')
      // A CA (its name says so), else a leaf named as the file: its certificate, key or OCSP response.
      if (name.endsWith('-ca')) { copyFileSync(ca.certFile, to); continue }
      const leaf = leaves.get(name) ?? ca.issue(name, `DNS:${name}.example.com`)
      leaves.set(name, leaf)
      copyFileSync(path.endsWith('.ocsp') ? ca.ocsp(leaf) : path.endsWith('.key') ? leaf.keyFile : leaf.certFile, to)
    }
    try {
      await parseConfig(merged(parse(b.text) as Record<string, unknown>), join(dir, 'gateway.yaml'), ENV)
      t.pass(`${b.file}:${b.line}`)
    } catch (err) {
      t.fail(`${b.file}:${b.line}: ${err instanceof ConfigError ? err.message : String(err)}`)
    }
  }
})

t.test('a fragment with a mistake fails (the merge does not hide it)', async t => {
  await t.rejects(parseConfig(merged({ routes: [{ name: 'x', match: { path: '/x' }, upstream: 'nope' }] }), FRAGMENT_FILE, ENV), ConfigError)
})

t.test('the plugin example in docs/plugins.md is the file config/examples/plugins/add-tenant/index.ts', async t => {
  const doc = readFileSync(new URL('docs/plugins.md', root), 'utf8')
  const code = /```ts\n([\s\S]*?)```/.exec(doc)?.[1]
  t.equal(code, readFileSync(new URL('config/examples/plugins/add-tenant/index.ts', root), 'utf8'))
})
