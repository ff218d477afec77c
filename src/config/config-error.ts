import { hidingValues, redactProblem } from './redact.ts'
import { REDACTED } from './url-userinfo.ts'

/** One problem in a config file, located at file:line:column and a key path such as routes[1].upstream. */
export interface ConfigIssue {
  file: string
  /** 0: the file as a whole (it cannot be read), at no line. */
  line: number
  col: number
  path: string
  message: string
}

export function formatIssue (i: ConfigIssue): string {
  return `${i.file}${i.line === 0 ? ':' : `:${i.line}:${i.col}`} ${i.path === '' ? '' : i.path + ': '}${i.message}`
}

// The hint `${NAME:-default}` (interpolate.ts) names a variable, holding no value of the file's: kept whole.
const HINT = /(\$\{\w+:-default\})/

const redacted = (message: string): string => message.split(HINT).map((part, i) => i % 2 === 1 ? part : redactProblem(part)).join('')
// A whole value `$NAME` is a variable the loader refused (interpolate.ts): its problem quotes the name to say how to write it.
const REFUSED_VARIABLE = /^\$(?=_*[A-Z])[A-Z0-9_]+$/

/**
 * `issues` with what they quote of the file (a route path with `?token=`, a URL's password) redacted
 * (redactProblem), and `secrets`, the config's hidden values (hiddenValues), replaced wherever one
 * is quoted, as in a build failure's error: a check or a plugin's warning echoing a value it did not
 * know to be secret.
 */
export function hiddenIn (issues: readonly ConfigIssue[], secrets: readonly string[]): ConfigIssue[] {
  const hide = hidingIn(secrets)
  // A path is keys (one holding a secret is hidden as it is made, shownKey): a value looked for there hid the key of the same name.
  return issues.map(i => ({ ...i, path: redacted(i.path), message: hide(i.message) }))
}

// A cut text ending in a URL's authority (`https://user:pa`): its userinfo may go on past the cut.
const CUT_USERINFO = /(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/)[^\s/?]+$/i

/**
 * A message as hiddenIn shows it. `cut`: it was cut from a longer one, and what may be the start of
 * a secret at its end is hidden too: of one of `secrets` (hidingValues), a URL's userinfo.
 */
export function hidingIn (secrets: readonly string[]): (message: string, cut?: boolean) => string {
  const hideValues = hidingValues(secrets.filter(s => !REFUSED_VARIABLE.test(s)))
  return (message, cut = false) => {
    const hidden = hideValues(message, cut)
    return redacted(cut ? hidden.replace(CUT_USERINFO, `$1${REDACTED}`) : hidden)
  }
}

/**
 * Thrown when a config cannot be used; carries every issue found, not just the first, as hiddenIn
 * shows them, so that every output shares it: the reload answer, the log, `portcullis validate`.
 */
export class ConfigError extends Error {
  readonly code = 'PCL_ERR_CONFIG'
  readonly issues: ConfigIssue[]
  constructor (issues: ConfigIssue[], secrets: readonly string[] = []) {
    const sorted = hiddenIn(issues, secrets).sort((a, b) => a.line - b.line || a.col - b.col)
    super(`invalid configuration (${sorted.length} problem${sorted.length === 1 ? '' : 's'}):\n` + sorted.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = sorted
  }
}
