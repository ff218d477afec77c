import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config/load.ts'
import { ConfigError, formatIssue } from '../src/config/config-error.ts'

async function refused (file: string): Promise<string[]> {
  try {
    await loadConfig(file, {})
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue)
    throw err
  }
  return ['accepted']
}

// A file of NULs was said to be UTF-16 ("save it as UTF-8"): it is no text at all.
t.test('a file with NUL bytes is said to be no text, with where the first is; UTF-16 only with its pattern', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-binary-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const files = {
    'zeros.yaml': Buffer.alloc(2000),
    // A PNG's head: NULs here and there, on both sides of the byte pairs.
    'image.yaml': Buffer.from('89504e470d0a1a0a0000000d49484452000000100000001008060000001ff3ff61', 'hex'),
    // yaml reads a NUL as a character: a stray one in the text loaded.
    'stray.yaml': Buffer.from('server:\n  listen: { host: 127.0.0.1, port: 0 }\n\0upstreams: {}\nroutes: []\n')
  }
  const at = { 'zeros.yaml': 0, 'image.yaml': 8, 'stray.yaml': 47 }
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(join(dir, name), bytes)
    t.same(await refused(join(dir, name)), [`${join(dir, name)}: the file is not text (a binary file?): it holds a NUL byte, at byte ${at[name as keyof typeof at]}; a config file is YAML text, in UTF-8`], name)
  }
  // UTF-16 with a CJK character whose low byte is a NUL (U+4E00): still UTF-16.
  writeFileSync(join(dir, 'cjk.yaml'), Buffer.from('# \u4e00\nserver:\n  listen: { host: 127.0.0.1, port: 0 }\n', 'utf16le'))
  t.same(await refused(join(dir, 'cjk.yaml')), [`${join(dir, 'cjk.yaml')}: the file is UTF-16 (as Notepad saves "Unicode"): save it as UTF-8`])
})
