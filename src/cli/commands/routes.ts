import { Runtime } from '../../runtime/runtime.ts'
import { createLogger } from '../../logging/logger.ts'
import { loadOrReport, parseCommand } from '../options.ts'

export const summary = 'print the route table, in the order routes are tried'
const HELP = `Usage: portcullis routes [-c FILE]

Prints every route of FILE in precedence order: exact hosts, then wildcard hosts, then routes
for any host; within each, the most specific path first (exact, params, prefix), then file order.`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP)
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const runtime = await Runtime.build(loaded, createLogger({ level: 'silent' }), { dryRun: true })
  const rows = runtime.router.ordered().map(r => [
    r.name,
    r.hosts.length === 0 ? '*' : r.hosts.map(h => h.kind === 'exact' ? h.host : '*' + h.suffix).join(','),
    r.path.source,
    r.methods === undefined ? 'ANY' : [...r.methods].join(','),
    `${r.upstream.name} (${r.upstream.targets.map(t => t.url).join(', ')})`,
    r.pipeline.steps.map(s => s.name).join(' → ') || '-'
  ])
  printTable(['ROUTE', 'HOST', 'PATH', 'METHODS', 'UPSTREAM', 'PLUGINS'], rows)
  await runtime.dispose()
  return 0
}

function printTable (head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  for (const row of [head, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd())
}
