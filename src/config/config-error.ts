/** One problem in a config file, located at file:line:column and a key path such as routes[1].upstream. */
export interface ConfigIssue {
  file: string
  line: number
  col: number
  path: string
  message: string
}

export function formatIssue (i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col} ${i.path === '' ? '' : i.path + ': '}${i.message}`
}

/** Thrown when a config cannot be used; carries every issue found, not just the first. */
export class ConfigError extends Error {
  readonly code = 'PCL_ERR_CONFIG'
  readonly issues: ConfigIssue[]
  constructor (issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col)
    super(`invalid configuration (${sorted.length} problem${sorted.length === 1 ? '' : 's'}):\n` + sorted.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = sorted
  }
}
