import { Runtime } from '../../runtime/runtime.ts'
import { describeRoute } from '../../runtime/describe-route.ts'
import { formatStep } from '../../plugins/describe-step.ts'
import { createLogger } from '../../logging/logger.ts'
import { loadOrReport, parseCommand } from '../options.ts'

const HELP = `Usage: portcullis routes [-c FILE]

Prints every route of FILE in precedence order: exact hosts, then wildcard hosts, then routes
for any host; within each, the most specific path first (exact, params, prefix; longer literal
text; more segments), then routes with methods, then more header conditions, then file order.`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP)
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  const runtime = await Runtime.build(loaded, createLogger({ level: 'silent' }), { dryRun: true })
  const rows = runtime.router.ordered().map(describeRoute).map(r => [
    r.name,
    r.hosts.length === 0 ? '*' : r.hosts.join(','),
    r.path,
    r.methods === undefined ? 'ANY' : r.methods.join(','),
    Object.entries(r.headers).map(([name, value]) => `${name}: ${value}`).join(', ') || '-',
    `${r.upstream} (${r.targets.join(', ')})`,
    r.plugins.map(formatStep).join(' → ') || '-'
  ])
  printTable(['ROUTE', 'HOST', 'PATH', 'METHODS', 'HEADERS', 'UPSTREAM', 'PLUGINS'], rows)
  await runtime.dispose()
  return 0
}

function printTable (head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  for (const row of [head, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd())
}
