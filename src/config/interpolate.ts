const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*/y
// What follows a name in a `${` problem's quote: a colon and a sign at most (`:=`, `+`, `:?`), never the text after it.
const OPERATOR_RE = /:?[^\w\s{}]?/y
/** A `$NAME` without braces: the whole word after `$`, read as a variable's name if in capitals (as they are named). */
const BARE_RE = /\$(\w+)/y
const CAPITALS = /^(?=_*[A-Z])[A-Z0-9_]+$/

const FORMS = 'use ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message} or ${VAR?message} ($${ for a literal ${)'

/**
 * The value with its variables replaced, what is wrong with it, one message each (none: it is
 * fine), and what loads but may not be meant (warnings).
 */
export interface Interpolated { value: string, problems: string[], warnings: string[] }

/**
 * Replaces ${VAR} in a YAML string, as a shell does, with these forms: ${VAR:-default} (the default
 * when VAR is unset or empty), ${VAR-default} (only when unset), ${VAR:?message} (an error when
 * unset or empty), ${VAR?message} (only when unset). ${VAR} alone must be set and not empty. A
 * default may hold ${...} itself, read only when the default is used; `$${` is a literal `${`.
 * Any other `${` is an error, never kept as written: a secret such as `${TOKEN:=x}` must not
 * become the literal text. So is a `$NAME` without braces (NAME in capitals) that is the whole value:
 * `token: "$ADMIN_TOKEN"` would be that text, which anyone reading the file could send; a whole
 * `$$NAME` is the text `$NAME`. Other `$`s are kept (a password hash's `$2b$10$...`, a regex's
 * `^/api$`, a script's `$HOME`), a `$NAME` inside a value whose NAME is set warned of. The result is
 * a string; schema validation turns "8080" into a number where one is expected. A problem with a
 * `${` quotes its name and operator only: a default, under any key, may be a secret (`${DB_URL=postgres://u:pw@h}`).
 * `secret`: whether the value is one (GET /config hides it), asked only for a problem or a warning,
 * which then quotes nothing of the value (a ${VAR:?message}'s message neither) but a variable's name.
 */
export function interpolate (text: string, env: NodeJS.ProcessEnv, secret = (): boolean => false): Interpolated {
  const problems: Problem[] = []
  const value = expand(text, 0, false, { env, problems, secret }).out
  return { value, problems: problems.map(p => p.message), warnings: problems.length > 0 ? [] : warnings(text, env, secret) }
}

// A `$NAME` (NAME in capitals) not after a `$` or a `\` (`$$NAME`, `\$NAME`: not meant as a variable).
const UNBRACED = /(?<![$\\])\$(\w+)/g

/**
 * What is not an error but may not be meant: a whole `$$NAME`, the text `$NAME` (before, `$$NAME`:
 * a secret written so changed meaning); a `$NAME` inside the value whose NAME is set, kept as that
 * text (`Bearer $UPSTREAM_TOKEN` sent as written). No value of a variable, nor (`secret`) the value
 * or any piece of it, its $NAMEs included.
 */
function warnings (text: string, env: NodeJS.ProcessEnv, secret: () => boolean): string[] {
  const name = text.startsWith('$$') ? bareName(text, 1) : undefined
  if (name !== undefined && name.length + 2 === text.length) {
    const [said, braced] = secret() ? ['this value, $$ and a name, is now read with one $ (a whole value $$NAME is the text $NAME', '${NAME}'] : [`"${text}" is now read as the text "$${name}" (a whole value $$NAME is $NAME`, `\${${name}}`]
    return [`${said}; it was once kept as written): for the variable's value write ${braced}`]
  }
  const set = new Set([...text.matchAll(UNBRACED)].map(m => m[1] as string).filter(n => CAPITALS.test(n) && env[n] !== undefined))
  // The name is a piece of a secret's value: said only that there is one.
  if (set.size > 0 && secret()) return ['a $NAME in this value is kept as that text, though NAME is set: write ${NAME} for the variable\'s value']
  return [...set].map(n => `$${n} is kept as that text, though ${n} is set: write \${${n}} for the variable's value`)
}

/** `form`: the text is malformed, whatever the environment (reported even in an unused default). */
interface Problem { message: string, form: boolean }

/** Text expanded up to `end` (exclusive). */
interface Piece { out: string, end: number }

interface Expanded extends Piece { closed: boolean }

/** Where a value is expanded: its environment, the problems found, whether the value is a secret. */
interface Context { env: NodeJS.ProcessEnv, problems: Problem[], secret: () => boolean }

/** Expands from `start`; inside a default or a message (`nested`), up to the `}` that closes it. */
function expand (text: string, start: number, nested: boolean, cx: Context): Expanded {
  let out = ''
  let i = start
  while (i < text.length) {
    const c = text[i]
    if (nested && c === '}') return { out, end: i + 1, closed: true }
    if (c === '$' && text.startsWith('$${', i)) {
      out += '${'
      i += 3
      continue
    }
    // A whole value `$NAME` (NAME in capitals) was meant as a variable: refused, and `$$NAME` is that
    // text. Elsewhere a `$` stays as written, set or not (a secret's, a script's `$HOME`).
    const bare = !nested && c === '$' && text[i + 1] !== '{' ? bareName(text, i) : undefined
    if (bare !== undefined && i === 1 && text[0] === '$' && bare.length + 2 === text.length) {
      i++ // the first `$` was copied
      continue
    }
    if (bare !== undefined && i === 0 && bare.length + 1 === text.length) {
      cx.problems.push({ message: hiddenName(bare, cx) ? 'this secret value, a $ and capitals, is not interpolated: write ${NAME} for a variable (or $$ for a leading $)' : `$${bare} is not interpolated: write \${${bare}} (or $$${bare} for the text $${bare})`, form: true })
    }
    if (c !== '$' || text[i + 1] !== '{') {
      out += c
      i++
      continue
    }
    const v = variable(text, i, cx)
    out += v.out
    i = v.end
  }
  return { out, end: i, closed: !nested }
}

// How variables are named (capitals and digits, words joined by `_`), which a random token (even
// AKIAIOSFODNN7EXAMPLE, in capitals) is not.
const ENV_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/
/**
 * Whether a problem leaves out a variable's name: under a secret's key, a name neither set nor
 * named as variables are may be the secret itself, pasted into `${}` or after a `$`.
 */
const hiddenName = (name: string, cx: Context): boolean => !ENV_NAME.test(name) && cx.env[name] === undefined && cx.secret()

/** NAME of a `$NAME` at `i` (not `${`), if in capitals. */
function bareName (text: string, i: number): string | undefined {
  BARE_RE.lastIndex = i
  const name = BARE_RE.exec(text)?.[1]
  return name !== undefined && CAPITALS.test(name) ? name : undefined
}

/** The `${...}` at `i`. */
function variable (text: string, i: number, cx: Context): Piece {
  const { env, problems } = cx
  const name = nameAt(text, i)
  if (name === undefined) return unsupported(text, i, cx)
  const after = i + 2 + name.length
  const value = env[name]
  const empty = value === undefined || value === ''
  if (text[after] === '}') {
    if (empty) problems.push({ message: hiddenName(name, cx) ? `an environment variable ${missing(value)} (its name is not shown: the value is a secret; use \${NAME:-default} for a default)` : `environment variable ${name} ${missing(value)} (use \${${name}:-default} for a default)`, form: false })
    return { out: value ?? '', end: after + 1 }
  }
  const colon = text[after] === ':' ? 1 : 0
  const op = text[after + colon]
  if (op !== '-' && op !== '?') return unsupported(text, i, cx)
  // With a colon, an empty variable counts as unset (as in a shell).
  const unset = colon === 1 ? empty : value === undefined
  // The word after the operator is read either way, to find its end; its own variables count only when used.
  const inner: Problem[] = []
  const word = expand(text, after + colon + 1, true, { ...cx, problems: inner })
  if (!word.closed) return unclosed(text, i, cx)
  problems.push(...(unset ? inner : inner.filter(p => p.form)))
  if (!unset) return { out: value ?? '', end: word.end }
  if (op === '-') return { out: word.out, end: word.end }
  const said = word.out === '' ? '' : cx.secret() ? ' (its message is not shown: the value is a secret)' : `: ${word.out}`
  problems.push({ message: hiddenName(name, cx) ? `an environment variable ${missing(value)} (its name and message are not shown: the value is a secret)` : `environment variable ${name} ${missing(value)}${said}`, form: false })
  return { out: '', end: word.end }
}

/** How a variable that had to have a value lacks one: `ADMIN_TOKEN=` in a shell or env file sets it, to nothing. */
const missing = (value: string | undefined): string => value === undefined ? 'is not set' : 'is empty'

/** The name of the `${NAME...` at `i`, if any. */
function nameAt (text: string, i: number): string | undefined {
  NAME_RE.lastIndex = i + 2
  return NAME_RE.exec(text)?.[0]
}

/** A `${` of no form understood: an error, skipped up to its closing brace. */
function unsupported (text: string, i: number, cx: Context): Piece {
  let depth = 0
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '{') depth++
    else if (text[j] === '}' && --depth === 0) {
      cx.problems.push({ message: `${quoted(text, i, j, cx)} is not supported: ${FORMS}`, form: true })
      return { out: '', end: j + 1 }
    }
  }
  return unclosed(text, i, cx)
}

/** A `${` whose `}` never comes: an error, up to the end of the value. */
function unclosed (text: string, i: number, cx: Context): Piece {
  cx.problems.push({ message: `${quoted(text, i, text.length, cx)} has no closing "}" ($\${ for a literal \${)`, form: true })
  return { out: '', end: text.length }
}

/**
 * The `${` at `i`, up to its `}` at `close` (the value's length if none), as a problem quotes it:
 * its name and operator, `...` for the rest (`"${ADMIN_TOKEN:=...}"`, `"${...}"` with no name); of a
 * secret value, nothing.
 */
function quoted (text: string, i: number, close: number, cx: Context): string {
  if (cx.secret()) return 'a ${ in this secret value'
  const name = nameAt(text, i)
  let end = i + 2
  if (name !== undefined) {
    end += name.length
    OPERATOR_RE.lastIndex = end
    end += OPERATOR_RE.exec(text)?.[0].length ?? 0
  }
  const head = text.slice(i, end)
  return JSON.stringify(`${head}${i + head.length < close ? '...' : ''}${close < text.length ? '}' : ''}`)
}

/** A piece of the value, quoted, cut short: a multi-line value may follow it. */
export function shown (piece: string): string {
  return JSON.stringify(piece.length > 40 ? `${piece.slice(0, 40)}...` : piece)
}
