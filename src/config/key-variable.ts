import { parseDocument, isScalar } from 'yaml'
import { readFilePath } from './file-path.ts'

/** The environment variable a key's value comes from (`port: "${PORT:-8080}"` gives PORT), if any. Cold path: re-reads the file. */
export function variableOf (file: string, path: readonly string[]): string | undefined {
  try {
    const node = parseDocument(readFilePath(file).toString('utf8')).getIn(path, true)
    const value = isScalar(node) ? node.value : undefined
    return typeof value === 'string' ? /\$\{([A-Za-z_][A-Za-z0-9_]*)/.exec(value)?.[1] : undefined
  } catch {
    return undefined
  }
}
