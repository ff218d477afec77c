import { LineCounter, parseDocument } from 'yaml'
import type { ConfigIssue } from '../config/config-error.ts'
import { formatPath, locate, type KeyPath } from '../config/positions.ts'
import type { LoadedConfig } from '../config/load.ts'
import { http2Limits } from '../server/http2.ts'
import { workerCount } from '../workers/worker-count.ts'

const where = (l: { host: string, port: number } | undefined) => l === undefined ? 'no admin listener' : `${l.host}:${l.port}`

type Loaded = Pick<LoadedConfig, 'config' | 'serverTls'>

/**
 * Settings bound at start (listening sockets, worker processes) that a reload cannot change, and
 * expired certificates it cannot switch to. A reload that does either is rejected whole, located
 * in `text` like any other config problem.
 */
export function frozenSettingIssues ({ config: active, serverTls: activeTls }: Loaded, { config: next, serverTls: nextTls }: Loaded, text: string, file: string): ConfigIssue[] {
  const changes: Array<[KeyPath, string]> = []
  const restart = 'cannot change on reload (restart the gateway to apply it)'
  if (where(active.server.listen) !== where(next.server.listen)) {
    changes.push([['server', 'listen'], `listener address ${restart}; still listening on ${where(active.server.listen)}`])
  }
  if (where(active.admin?.listen) !== where(next.admin?.listen)) {
    changes.push([next.admin === undefined ? [] : ['admin', 'listen'], `admin listener ${restart}; still ${active.admin === undefined ? 'none' : `listening on ${where(active.admin.listen)}`}`])
  }
  const redirect = (c: LoadedConfig['config']) => c.server.tls?.redirectHttp?.listen
  if (where(redirect(active)) !== where(redirect(next))) {
    changes.push([redirect(next) === undefined ? ['server', 'tls'] : ['server', 'tls', 'redirectHttp', 'listen'], `HTTPS redirect listener ${restart}; still ${redirect(active) === undefined ? 'none' : `listening on ${where(redirect(active))}`}`])
  }
  // `auto` is the count it resolves to: from 2 to `auto` on 2 cores changes nothing.
  if ((active.server.workers ?? 1) !== (next.server.workers ?? 1) && workerCount(active.server.workers) !== workerCount(next.server.workers)) {
    changes.push([['server', 'workers'], `worker count ${restart}; still ${workerCount(active.server.workers)}`])
  }
  if ((active.server.tls === undefined) !== (next.server.tls === undefined)) {
    changes.push([['server', next.server.tls === undefined ? 'listen' : 'tls'], `turning TLS ${next.server.tls === undefined ? 'off' : 'on'} ${restart}; certificates and clientAuth do reload`])
  }
  const [h2, nextH2] = [http2Limits(active.server), http2Limits(next.server)]
  if ((h2 === undefined) !== (nextH2 === undefined)) {
    changes.push([next.server.http2 === undefined ? ['server'] : ['server', 'http2'], `turning HTTP/2 ${nextH2 === undefined ? 'off' : 'on'} ${restart}; its limits do reload`])
  } else if (where(h2?.h2c) !== where(nextH2?.h2c)) {
    changes.push([nextH2?.h2c === undefined ? ['server', 'http2'] : ['server', 'http2', 'h2c', 'listen'], `h2c listener ${restart}; still ${h2?.h2c === undefined ? 'none' : `listening on ${where(h2.h2c)}`}`])
  }
  // As the logger was built at start: the default is whether stdout is a terminal.
  const pretty = (c: LoadedConfig['config']) => c.logging?.pretty ?? process.stdout.isTTY === true
  if (pretty(active) !== pretty(next)) {
    changes.push([next.logging?.pretty !== undefined ? ['logging', 'pretty'] : next.logging !== undefined ? ['logging'] : [], `logging.pretty ${restart}; logs are still ${pretty(active) ? 'pretty' : 'JSON lines'}`])
  }
  for (const { index, why } of nextTls?.expiredRenewals(activeTls) ?? []) {
    changes.push([['server', 'tls', 'certificates', index, 'cert'], `${why}: a reload does not switch to an expired certificate; the running one keeps serving`])
  }
  if (changes.length === 0) return []
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  return changes.map(([path, message]) => ({ file, ...locate(doc, lines, path), path: formatPath(path), message }))
}
