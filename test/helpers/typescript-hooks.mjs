// Module hooks (Node's loader thread) for Nodes that cannot strip types: a .ts file loads as an
// ES module that esbuild has stripped. tsx did this for about 0.45 s more CPU per process
// (its hooks for every module, CommonJS too), and tests start some 200 processes. The repository's
// sources are cached on disk, one file each, so only the first process to load one compiles it;
// files outside it (plugins tests write to temporary folders) are compiled each time.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CACHE = `${ROOT}node_modules/.cache/portcullis-tests/`
let esbuild

export async function load (url, context, next) {
  // Tests import some sources afresh, with a query (`main.ts?run=2`).
  const { protocol, pathname } = new URL(url)
  if (protocol !== 'file:' || !/\.[mc]?ts$/.test(pathname)) return next(url, context)
  const file = fileURLToPath(url)
  const text = readFileSync(file, 'utf8')
  if (!file.startsWith(ROOT)) return { format: 'module', source: await strip(text, file), shortCircuit: true }
  // A cached file ends with the hash of the source it was made from (its start may be a #! line).
  const stamp = `\n//${createHash('sha1').update(text).digest('hex')}\n`
  const cached = CACHE + createHash('sha1').update(file).digest('hex') + '.js'
  let source = existsSync(cached) ? readFileSync(cached, 'utf8') : undefined
  if (!source?.endsWith(stamp)) {
    source = await strip(text, file) + stamp
    mkdirSync(CACHE, { recursive: true })
    // Written whole, then renamed: processes that load the same file at once never read half of it.
    const part = `${cached}.${process.pid}`
    writeFileSync(part, source)
    renameSync(part, cached)
  }
  return { format: 'module', source, shortCircuit: true }
}

async function strip (text, file) {
  esbuild ??= await import('esbuild')
  // The inline source map makes stack traces name the .ts lines.
  const { code } = await esbuild.transform(text, { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: file })
  return code
}
