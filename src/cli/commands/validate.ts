import { loadOrReport, parseCommand, printWarnings } from '../options.ts'
import { replacedTopLevel } from '../../config/check-plugins.ts'
import { formatIssue } from '../../config/config-error.ts'
import { formatPath, locate } from '../../config/positions.ts'
import { readYaml } from '../../config/yaml-document.ts'
import { LOOKUP_TIMEOUT_MS, uncheckedMessage, unresolvedTargets } from '../../upstreams/unresolved-targets.ts'

const HELP = `Usage: portcullis validate [-c FILE]

Checks FILE (default config/gateway.yaml): YAML syntax, the schema, references between
sections, and every plugin's config. Prints each problem as file:line:column key.path: message.
Exits 0 when the file is valid, 1 when it is not. Upstream target host names are looked up
(${LOOKUP_TIMEOUT_MS / 1000} s at most, a DNS that does not answer included): one that does not resolve
here is a warning, not a problem, and so are the names there was no time for.
Plugins' setup (run once per route, as the gateway builds its routes) runs only at start and on
reload, not here: its errors show there.`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP)
  if (typeof opts === 'number') return opts
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  printWarnings(loaded)
  const check = await unresolvedTargets(loaded.config)
  const unresolved = check.unresolved.map(u => ({ at: u.at, message: `host name "${u.host}" does not resolve here (${u.code}): requests to this target fail until it does` }))
  const placed = [...replacedTopLevel(loaded.config, loaded.plugins), ...unresolved]
  if (placed.length > 0) {
    const { doc, lines } = readYaml(loaded.text)
    for (const w of placed) console.error(formatIssue({ file: opts.config, ...locate(doc, lines, w.at, 'key'), path: '', message: `warning: ${formatPath(w.at)}: ${w.message}` }))
  }
  if (check.unchecked > 0) console.error(formatIssue({ file: opts.config, line: 0, col: 0, path: '', message: `warning: ${uncheckedMessage(check.unchecked)}` }))
  console.log(`${opts.config}: valid (${count(loaded.config.routes.length, 'route')}, ${count(Object.keys(loaded.config.upstreams).length, 'upstream')})`)
  return 0
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`
