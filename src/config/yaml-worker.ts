// The parse worker (see yaml-off-thread.ts): answers the config text as plain data, or undefined where
// the main thread would report a problem (it parses again then, to say where).
import { parentPort, workerData } from 'node:worker_threads'
import { readYaml, interpolateDocument } from './yaml-document.ts'
import { toData } from './yaml-aliases.ts'
import { writtenScalars } from './written-text.ts'
import { formatPath, locate, type KeyPath } from './positions.ts'
import type { ConfigIssue } from './config-error.ts'

const { text, env } = workerData as { text: string, env: NodeJS.ProcessEnv }
const { doc, lines } = readYaml(text)
const warnings: ConfigIssue[] = []
const warn = (path: KeyPath, message: string): void => { warnings.push({ file: '', ...locate(doc, lines, path, 'value'), path: formatPath(path), message }) }
const data = doc.errors.length === 0 && interpolateDocument(doc, env, () => true, undefined, warn).length === 0 ? toData(doc, lines, '') : undefined
parentPort?.postMessage(data !== undefined && 'data' in data ? { data: data.data, written: writtenScalars(doc), warnings } : undefined)
