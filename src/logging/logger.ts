import cluster from 'node:cluster'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import type { PeerCertificate } from 'node:tls'
import pino, { type DestinationStream, type Logger } from 'pino'
import type { PrettyOptions } from 'pino-pretty'
import { hideUserinfo, REDACTED } from '../config/url-userinfo.ts'
import { accessPretty } from './access-pretty.ts'

export interface LoggerOptions { level?: string, pretty?: boolean }

// Credentials never reach the logs, whichever log line carries headers, request or response (an
// upstream may echo one). Sec-WebSocket-Protocol: a browser's WebSocket cannot set Authorization, so
// tokens ride in it (Kubernetes' base64url.bearer...), and a server must answer with one of those
// offered: it may echo the token. The usual token headers too: Spring Session's X-Auth-Token,
// GitLab's Private-Token, AWS's session token, Vault's token; Google's and Azure API Management's
// API keys; what sits in front may add: a Cloudflare Access service token's secret, the user's
// access token (oauth2-proxy's X-Forwarded-Access-Token, an AWS ALB's); a GitLab webhook's secret.
// Not CSRF tokens (worthless without the session cookie, hidden), a webhook's HMAC (X-Hub-Signature:
// of one body), signed identity assertions (Cf-Access-Jwt-Assertion): each name costs every line.
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key', 'apikey', 'sec-websocket-protocol',
  'x-auth-token', 'x-access-token', 'private-token', 'x-amz-security-token', 'x-vault-token', 'x-goog-api-key', 'ocp-apim-subscription-key',
  'cf-access-client-secret', 'x-forwarded-access-token', 'x-amzn-oidc-accesstoken', 'x-gitlab-token']
// Exact names: each path costs every line with headers (55 of them, some 12 µs a line), so their
// spellings with `_` for `-` (`x_api_key`) are the access log's redactHeaders' to hide.
const REDACT = CREDENTIAL_HEADERS
  .flatMap(h => [`reqHeaders["${h}"]`, `headers["${h}"]`, `resHeaders["${h}"]`])
  .concat(['resHeaders["set-cookie"]'])
/** pino's `redact` for every logger of the gateway's (tests' in-memory ones too). */
export const REDACTION = { paths: REDACT, censor: '[redacted]' }

/** A header name as CGI, WSGI and PHP servers read it: `x_api_key` is X-Api-Key. */
const dashed = (name: string): string => name.includes('_') ? name.replaceAll('_', '-') : name

// redactHeaders' names and CREDENTIAL_HEADERS dashed, once per list (the runtime passes one list per config).
const dashedLists = new WeakMap<readonly string[], ReadonlySet<string>>()
function dashedNames (names: readonly string[]): ReadonlySet<string> {
  let set = dashedLists.get(names)
  if (set === undefined) dashedLists.set(names, set = new Set([...CREDENTIAL_HEADERS, ...names.map(dashed)]))
  return set
}

/**
 * `headers` with those of `names` (lower-case) and CREDENTIAL_HEADERS present shown as [redacted],
 * in any spelling with `_` for `-` (`x_api_key`: the header to CGI, WSGI and PHP upstreams, removed
 * from the request beside an X-Api-Key credential), URL-valued ones cut as loggedUrl (see URL_HEADERS), and without HTTP/2's
 * pseudo-headers (`:path` carries the query, which logs leave out; the others repeat the line's
 * fields): a copy only when there is one of these.
 */
export function redactHeaders<H extends Record<string, unknown>> (headers: H, names: readonly string[]): H {
  const secret = dashedNames(names)
  if (!hasSecretOrPseudo(headers, secret) && !URL_HEADERS.some(([name]) => hasCut(headers[name]))) return headers
  const copy: Record<string, unknown> = {}
  for (const name in headers) if (name.charCodeAt(0) !== COLON) copy[name] = headers[name]
  for (const [name, without] of URL_HEADERS) cut(copy, name, without)
  for (const name in copy) if (copy[name] !== undefined && secret.has(dashed(name))) copy[name] = '[redacted]'
  return copy as H
}

const COLON = 58

/** Whether `headers` hold one of `secret` (dashed) or an HTTP/2 pseudo-header: one pass, no allocation but for a name with `_`. */
function hasSecretOrPseudo (headers: Record<string, unknown>, secret: ReadonlySet<string>): boolean {
  for (const name in headers) if (name.charCodeAt(0) === COLON || (headers[name] !== undefined && secret.has(dashed(name)))) return true
  return false
}

/** Where withoutQuery cuts: a query, a fragment or a first path parameter. */
const CUT = /[?#;]|%3b/i

/**
 * `url` up to its query (`?`, marked `query`), its fragment (`#`, marked `#…`: it may hold a token,
 * `#access_token=`) or its first path parameter (`;` or `%3B`, marked `;…`: `;api_key=`, and
 * `;jsessionid=` where a servlet container rewrites URLs for clients without cookies), which the
 * logs leave out.
 */
function withoutQuery (url: string, query = '?…'): string {
  const at = url.search(CUT)
  if (at === -1) return url
  const cut = url[at]
  return `${url.slice(0, at)}${cut === '?' ? query : cut === '#' ? '#…' : ';…'}`
}

// A URL's authority: after leading C0 controls and spaces (a URL parser drops them), a special scheme
// and its slashes (any number, `https:/` or `https:\\` too, or none: `http:user:pass@host`, as browsers
// read them) or leading slashes (`//`, `///`). Its userinfo ends at the last @ before a /, ?, # or \
// that a host[:port] follows, as a URL parser reads it (`https://host/@name` has none); failing that,
// where a `:` comes first that no port of digits follows (`https://u:pa/ss@h`, `https://bob@corp:pa/ss@h`:
// a password with an unencoded /, ? or #; `https://host:8443/p?to=a@b` is a host and port), at the
// last @, hiding more rather than less; failing that too, at the last @ before the first /, ?, # or
// \, whatever follows (a username alone, its host[:port]
// followed by a quote, a space or a `>`: `https://TOKEN@h:8443'`, which a Refresh quotes or a Link
// spaces, and whose parser drops it). Another scheme's authority (`redis://`, where \ is no delimiter)
// is hidden up to the last @. A single leading / is a path (`/u/a@b`). Each part stops where the
// next starts: one pass, whatever the value. A hidden span holding a query, fragment or path
// parameter's start (CUT) may have taken a query's `@`: what follows is left out too.
// eslint-disable-next-line no-control-regex
const SPECIAL_USERINFO = /^([\s\x00-\x20]*(?:(?:https?|wss?|ftp):[/\\]*|[/\\]{2,}))(?:[^/?#\\@]*(?:@[^/?#\\@]*)*@(?=(?:\[[^\]/?#\\@]*\]|[^/?#\\@:[]*)(?::\d*)?(?:[/?#\\]|$))|[^/?#\\:[]*:(?!\d*(?:[/?#\\]|$))[\s\S]*@|[^/?#\\]*@)/i
// eslint-disable-next-line no-control-regex
const OTHER_USERINFO = /^([\s\x00-\x20]*(?!(?:https?|wss?|ftp):)[a-z][a-z0-9+.-]*:[/\\]+)[\s\S]*@/i

/**
 * `url` with its userinfo hidden as the patterns above read it, after leaving out tabs and newlines,
 * as a URL parser does (`ht\ttp://`); all that follows too where the hidden span holds a CUT (`https://[redacted]@…`).
 */
function hideAuthorityUserinfo (url: string): string {
  if (!url.includes('@')) return url
  const text = url.replace(/[\t\n\r]/g, '')
  const found = SPECIAL_USERINFO.exec(text) ?? OTHER_USERINFO.exec(text)
  if (found === null) return text
  const lead = found[1] as string
  return `${lead}${REDACTED}@${CUT.test(found[0].slice(lead.length)) ? '…' : text.slice(found[0].length)}`
}

/**
 * A URL-valued header's `url` as logged: its userinfo hidden first (a password may hold a `?` or
 * `#`), then cut as withoutQuery. Not hideUserinfo, which looks for a URL anywhere in a text:
 * here the URL starts the value, maybe as browsers read one (`https:/`, `//`).
 */
const loggedUrl = (url: string): string => withoutQuery(hideAuthorityUserinfo(url))

/** A link's `<` and URL: at the field's start or after a `,`, to the next `>`; elsewhere, to a `>` or the next `, <`. */
const LINK = /((?:^|,)\s*)<([^>]*)|<((?:[^>,]|,(?!\s*<))*)/g

/** A Link URL with its userinfo hidden at its start and after each `<` in it, as a parser taking `<…>` wherever it is reads one. */
const hideLinkUserinfo = (url: string): string =>
  url.includes('@') ? hideAuthorityUserinfo(url).replace(/<[^<]*/g, inner => `<${hideAuthorityUserinfo(inner.slice(1))}`) : url

/**
 * A Link or Link-Template field (RFC 8288, RFC 9652) with each `<URL>` shown as loggedUrl: a next
 * page's `?access_token=`. A link starts at the field's start or after a `,` (`<URL>; rel=a, <URL>`)
 * and its URL runs to the next `>` (or the end, a `<` left open), a `<` in it included
 * (`<http://bob:pa<ss@h/>`). A `<` elsewhere (a quoted parameter's, or after a stray `>`) starts one
 * too, which ends at a `>` or before the next `, <`. One pass over the field, whatever it holds.
 */
const loggedLinks = (links: string): string =>
  links.replace(LINK, (_, lead: string | undefined, url: string | undefined, stray: string) => `${lead ?? ''}<${withoutQuery(hideLinkUserinfo(url ?? stray))}`)

/**
 * Refresh's `5; url=URL` (or `5,URL`, `5;URL='URL'`, `5 URL`: browsers need no `;` or `,`): its
 * delay kept, its URL shown as loggedUrl (a closing quote with it, which SPECIAL_USERINFO allows for).
 */
function loggedRefresh (refresh: string): string {
  const delay = /^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?['"]?/i.exec(refresh)?.[0] ?? ''
  return `${delay}${loggedUrl(refresh.slice(delay.length))}`
}

/**
 * Headers whose value is a URL, with how each is shown (see loggedUrl; an API key may be in it as
 * in the path: a page's `?api_key=` in Referer, OAuth's `?code=` or `#access_token=` in Location, a
 * password as `user:pass@` in any): Origin, those a proxy or a client names the original request's
 * URL or prefix in (nginx's auth_request sends X-Original-URI, Envoy X-Envoy-Original-Path), nginx's
 * X-Accel-Redirect (`/f?sig=`), WebDAV's Destination, SourceMap, Refresh and each URL of Link and
 * Link-Template. Lower case, as Node and undici name headers.
 */
const URL_HEADERS: ReadonlyArray<readonly [name: string, without: (value: string) => string]> = [
  ...['referer', 'origin', 'location', 'content-location', 'x-forwarded-uri', 'x-original-url', 'x-original-uri', 'x-request-uri',
    'x-original-request-uri', 'x-forwarded-prefix', 'x-envoy-original-path', 'x-rewrite-url', 'x-accel-redirect', 'destination',
    'sourcemap', 'x-sourcemap']
    .map(name => [name, loggedUrl] as const),
  ['refresh', loggedRefresh],
  ['link', loggedLinks],
  ['link-template', loggedLinks]
]

/** Whether loggedUrl may change `value`: a place withoutQuery cuts, or an @ (userinfo, maybe). No allocation. */
const mayCut = (value: string): boolean => CUT.test(value) || value.includes('@')

function hasCut (value: unknown): boolean {
  return typeof value === 'string' ? mayCut(value) : Array.isArray(value) && value.some(v => typeof v === 'string' && mayCut(v))
}

function cut (headers: Record<string, unknown>, name: string, without: (value: string) => string): void {
  const value = headers[name]
  if (typeof value === 'string') headers[name] = without(value)
  else if (Array.isArray(value)) headers[name] = value.map(v => typeof v === 'string' ? without(v) : v)
}

/** Past this, a logged path is cut (a client could send 8 KiB of it on every request); see loggedPath. */
const MAX_LOGGED_PATH = 2048

/** `path` as logged: its first MAX_LOGGED_PATH characters and `…(+N bytes)` for the rest, if longer. */
export function loggedPath (path: string): string {
  return path.length <= MAX_LOGGED_PATH ? path : `${path.slice(0, MAX_LOGGED_PATH)}…(+${path.length - MAX_LOGGED_PATH} bytes)`
}

/** A target's leading schemes and their slashes, whose authority hideAuthorityUserinfo reads. */
const LEADING_SCHEMES = /^(?:[a-z][a-z0-9+.-]*:\/\/+)*/i

/**
 * A raw request target as logged (a rejected request's line, the admin API's audit lines): its
 * userinfo hidden (a password may hold an unencoded `?` or `#`), a leading `//` or `/\` authority's
 * (Node refuses such a target, `//u:pass@h/x#f`, but it is logged) and any URL's in it, then cut as
 * withoutQuery, a query unmarked, then as loggedPath. hideUserinfo reads what follows the leading
 * schemes only: it would read an absolute-form target whole, to its last `@`
 * (`https://h:81/p?to=a@b&token=…` showed `token=`). Where a userinfo it hides runs past the cut
 * (`/go/https://h#a@b;token=…`), nothing after the first one hidden is shown.
 */
export function loggedTarget (target: string): string {
  const hidden = hideAuthorityUserinfo(target)
  const schemes = (LEADING_SCHEMES.exec(hidden) as RegExpExecArray)[0]
  const rest = hidden.slice(schemes.length)
  const shown = withoutQuery(`${schemes}${hideUserinfo(rest)}`, '')
  const at = rest.search(CUT)
  if (at !== -1 && shown !== withoutQuery(`${schemes}${hideUserinfo(rest.slice(0, at))}${rest.slice(at)}`, '')) {
    return loggedPath(`${shown.slice(0, shown.indexOf(`${REDACTED}@`) + REDACTED.length + 1)}…`)
  }
  return loggedPath(shown)
}

/** PIPE_BUF on Linux: a pipe write of up to this many bytes is never spliced with another process's; a longer one may be. */
const PIPE_BUF = 4096
/** Whether other processes write to this one's stdout at once: see shareStdout. */
let shared = false

/** Bytes of lines held while stdout takes none (its reader stalled): past them, a line is dropped. */
const MAX_HELD = 4 * 1024 * 1024
/**
 * Past MAX_HELD, room for lines rarer and weightier than the access lines that fill it: warnings and
 * errors (a crash's fatal line) may use all of it, other info lines (`shutting down`, `stopped`) a quarter.
 */
const RESERVE = 64 * 1024
/** `{"level":`: pino writes the level first, so the first digit of a line's level is at this index. */
const LEVEL_AT = 9
const WARN_DIGIT = 0x34
const INFO_DIGIT = 0x33
/** How the access lines end (see AccessLog; `request rejected` is one too): no reserve for them. */
const ACCESS_ENDS = ['"msg":"request"}\n', '"msg":"request rejected"}\n']
/** How soon a write stdout refused (EAGAIN: its pipe full) is tried again: at once, then twice as late at each refusal in a row. */
const RETRY_MS = 1
const MAX_RETRY_MS = 100
/** How long a line waits for others to fill a write. */
const FLUSH_MS = 250
/**
 * How long writeAll may take, from its start, however slowly the reader takes lines: a worker's less
 * than the 5 s of silence after which the primary counts it unresponsive, and than the 3 s it is
 * given to end at a second signal.
 */
const EXIT_WRITE_MS = cluster.isWorker ? 2_000 : 5_000
/** How long writeAll waits after stdout refused a write (its pipe full). */
const EAGAIN_WAIT_MS = 10
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Lines this process dropped (see StdoutLines): portcullis_log_lines_dropped_total. */
let dropped = 0
export const droppedLogLines = (): number => dropped

/**
 * Whole lines written at once: their text (what a write cut short left of it: bytes), bytes and
 * count; `weighty`: where in `text` the lines the reserve is for (see reserveFor) start and end,
 * pairs of indexes, so that an exit can write them first (see writeAll): none for an access line.
 */
interface Chunk { text: string | Buffer, bytes: number, lines: number, weighty: number[] | undefined }

/** How a logger's JSON line is shown: as it is, or made readable (see createLogger). */
type Render = (line: string) => string

/**
 * The process's stdout, for its log lines: gathered into writes of up to PIPE_BUF bytes (a longer
 * line alone: see shareStdout), each written synchronously once no further line fits it, or
 * within FLUSH_MS. A write per access-log line cost about a tenth of the gateway's throughput
 * (`npm run bench`); a write handed to the thread pool per batch (sonic-boom's sync: false), 2-3 µs more a line.
 * Never blocks the process: stdout is written non-blocking (see stdoutFd), so a full pipe or a
 * stalled terminal refuses a write (EAGAIN), tried again (RETRY_MS), the lines
 * held meanwhile up to MAX_HELD bytes; past them each is dropped and counted (but warnings, errors
 * and info lines other than access lines, within RESERVE), and the first line held again is preceded
 * by one saying how many (or, all quiet, follows the lines held once written). A reader gone
 * (EPIPE; EIO: a terminal hung up), every line is dropped. What is still held is written when the process exits (writeAll),
 * crash included, within EXIT_WRITE_MS; only a SIGKILL can lose it otherwise.
 */
class StdoutLines {
  readonly #fd = stdoutFd()
  readonly #chunks: Chunk[] = []
  #held = 0
  /** Lines dropped since the last held: the next line held is preceded by a line saying so. */
  #gap = 0
  /** How the last line held was shown: the lines of StdoutLines' own (gapLine, deferredLine) alike. */
  #render = plain
  /** While stdout refuses writes: the next try, and how long after a refusal the one after it comes. */
  #retry: NodeJS.Timeout | undefined
  #retryMs = RETRY_MS
  /** stdout's reader has gone (EPIPE, EIO), or stdout is closed. */
  #gone = false

  constructor () {
    setInterval(() => {
      // A gap the reader has caught up with shows though no line follows it (an idle gateway).
      if (this.#gap > 0 && !this.#gone && this.#chunks.length === 0 && this.#retry === undefined) this.#hold(this.#render(gapLine(this.#gap)), false)
      this.#send(true)
    }, FLUSH_MS).unref()
  }

  /** pino's destination: `line`, a JSON line and its newline, held as `render` shows it. */
  write (line: string, render = plain): void {
    if (this.#gone) return this.#drop()
    let text = render(line)
    let bytes = Buffer.byteLength(text)
    // From now on (shareStdout) a line longer than PIPE_BUF could be spliced with another process's,
    // and one longer than MAX_HELD could never be held: cut to fit.
    if ((shared && bytes > PIPE_BUF) || bytes > MAX_HELD) bytes = Buffer.byteLength(text = fitted(line, render))
    const reserve = reserveFor(line)
    const over = this.#held + bytes - MAX_HELD
    if (over > 0 && over > reserve) return this.#drop()
    this.#render = render
    if (this.#gap > 0) this.#hold(this.#render(gapLine(this.#gap)), false)
    this.#hold(text, reserve > 0, bytes)
    this.#send(false)
  }

  /** pino's logger.flush(): what is held written now, as far as stdout takes it. */
  flush (done?: () => void): void {
    this.#send(true)
    done?.()
  }

  #drop (): void {
    dropped++
    this.#gap++
  }

  /** `weighty`: a line writeAll may write first; a gap line is not, but keeps its place among the lines it stands for. */
  #hold (text: string, weighty: boolean, bytes = Buffer.byteLength(text)): void {
    this.#gap = 0
    this.#held += bytes
    const last = this.#chunks.at(-1)
    if (last !== undefined && typeof last.text === 'string' && last.bytes + bytes <= PIPE_BUF) {
      if (weighty) (last.weighty ??= []).push(last.text.length, last.text.length + text.length)
      last.text += text
      last.bytes += bytes
      last.lines++
    } else this.#chunks.push({ text, bytes, lines: 1, weighty: weighty ? [0, text.length] : undefined })
  }

  /** Writes the chunks no line will join (`all`: every one) while stdout takes them. */
  #send (all: boolean): void {
    const chunks = this.#chunks
    while (this.#retry === undefined) {
      const chunk = chunks[0]
      if (chunk === undefined || (chunks.length === 1 && !all && chunk.bytes < PIPE_BUF)) return
      let written: number
      try {
        written = typeof chunk.text === 'string' ? fs.writeSync(this.#fd, chunk.text) : fs.writeSync(this.#fd, chunk.text)
      } catch (err) {
        this.#refused((err as NodeJS.ErrnoException).code)
        return
      }
      this.#held -= written
      this.#retryMs = RETRY_MS
      if (written === chunk.bytes) chunks.shift()
      else {
        // Cut short (a line longer than PIPE_BUF, or a socket): the rest goes next, before any other.
        chunk.text = (typeof chunk.text === 'string' ? Buffer.from(chunk.text) : chunk.text).subarray(written)
        chunk.bytes -= written
      }
    }
  }

  #refused (code: string | undefined): void {
    if (code === 'EPIPE' || code === 'EBADF' || code === 'EIO') {
      // Nobody will read them (EIO: a hung-up terminal, which never comes back): dropped, as every line from now on.
      this.#gone = true
      for (const chunk of this.#chunks.splice(0)) dropped += chunk.lines
      this.#held = 0
      return
    }
    // EAGAIN (the pipe full), or another failure that may pass (ENOSPC): tried again, lines held
    // meanwhile; soon (a reader slower than the gateway for a moment catches up at once), then
    // less and less often (one stalled costs a write a tenth of a second).
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#send(true)
    }, this.#retryMs).unref()
    this.#retryMs = Math.min(2 * this.#retryMs, MAX_RETRY_MS)
  }

  /**
   * Everything held written synchronously (the process exits), until a write fails for good or
   * EXIT_WRITE_MS have passed: a reader stalled, or slower than the lines held, keeps the process
   * from exiting that long at most. Once stdout refuses a write (the reader lags), the weighty
   * lines left go first: a crash's fatal line and `stopped` were lost behind megabytes of access
   * lines the reader could not take in time.
   */
  writeAll (): void {
    if (this.#gap > 0) this.#hold(this.#render(gapLine(this.#gap)), false)
    const end = performance.now() + EXIT_WRITE_MS
    const chunks = this.#chunks.splice(0)
    const texts: Array<string | Buffer> = chunks.map(c => c.text)
    let lagging = false
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i] as string | Buffer
      for (let rest = typeof text === 'string' ? Buffer.from(text) : text; rest.length > 0;) {
        try {
          rest = rest.subarray(fs.writeSync(this.#fd, rest))
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          const left = end - performance.now()
          if ((code !== 'EAGAIN' && code !== 'EBUSY') || left <= 0) return
          // This chunk's rest first (its lines whole), then the others in their new order.
          if (!lagging) texts.splice(i + 1, Infinity, ...this.#weightyFirst(chunks.slice(i + 1)))
          lagging = true
          Atomics.wait(sleeper, 0, 0, Math.min(EAGAIN_WAIT_MS, left))
        }
      }
    }
  }

  /**
   * The texts of `chunks` (none cut short yet: strings) with their weighty lines first, then a line
   * saying how many others follow, then those; as they are if no weighty line follows one of the others.
   * Regathered into texts of up to PIPE_BUF bytes, split between lines (see shareStdout).
   */
  #weightyFirst (chunks: Chunk[]): Array<string | Buffer> {
    const weighty: string[] = []
    const others: string[] = []
    let count = 0
    let reordered = false
    for (const { text, lines, weighty: at = [] } of chunks) {
      if (typeof text !== 'string') return chunks.map(c => c.text)
      count += lines - at.length / 2
      let from = 0
      for (let k = 0; k < at.length; k += 2) {
        const start = at[k] as number
        if (start > from) others.push(text.slice(from, start))
        if (others.length > 0) reordered = true
        weighty.push(text.slice(start, from = at[k + 1] as number))
      }
      if (from < text.length) others.push(text.slice(from))
    }
    if (!reordered) return chunks.map(c => c.text)
    return gathered([...weighty, this.#render(deferredLine(count)), ...others])
  }
}

/** `parts` (whole lines) joined into texts of up to PIPE_BUF bytes, a longer part alone. */
function gathered (parts: string[]): string[] {
  const texts: string[] = []
  let text = ''
  let bytes = 0
  for (const part of parts) {
    const size = Buffer.byteLength(part)
    if (bytes > 0 && bytes + size > PIPE_BUF) {
      texts.push(text)
      text = ''
      bytes = 0
    }
    text += part
    bytes += size
  }
  if (bytes > 0) texts.push(text)
  return texts
}

/** The identity Render: JSON lines as pino writes them. */
const plain: Render = line => line

/**
 * Bytes past MAX_HELD `line` (JSON, as pino writes it) may be held in (see RESERVE); more than 0:
 * the line is weighty (see Chunk). A character or two read, two ends compared for an info line.
 */
function reserveFor (line: string): number {
  const level = line.charCodeAt(LEVEL_AT)
  if (level >= WARN_DIGIT) return RESERVE
  return level === INFO_DIGIT && !isAccess(line) ? RESERVE / 4 : 0
}

/** Whether `line` (JSON, as pino writes it) is an access line: info, ending as ACCESS_ENDS. */
const isAccess = (line: string): boolean => line.charCodeAt(LEVEL_AT) === INFO_DIGIT && ACCESS_ENDS.some(end => line.endsWith(end))

/** The line that stands for `count` lines dropped, as pino writes a warning. */
const gapLine = (count: number): string =>
  `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, dropped: count, msg: `${count} log lines dropped: stdout's reader fell more than ${MAX_HELD / 1024 / 1024} MiB of them behind (portcullis_log_lines_dropped_total)` })}\n`

/** The line that says, at exit, that `count` lines held come after weightier ones logged after some of them (see writeAll). */
const deferredLine = (count: number): string =>
  `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, deferred: count, msg: `${count} log lines held at exit follow (access lines, debug), logged before some of the lines above: stdout's reader is slower than the lines held, and what it has not taken ${EXIT_WRITE_MS / 1000} s after the exit began is lost` })}\n`

/**
 * The fd StdoutLines writes. A pipe or a socket: stdout's, which Node made non-blocking on opening
 * it (libuv). A terminal: Node makes its fd blocking (a stalled one, Ctrl-S, an unread `docker run -t`,
 * a frozen SSH session, froze the whole gateway in a write), so it is opened again, non-blocking: a
 * file description of this process's own, as libuv's reopening of a terminal is, not fd 1's (which
 * the shell or other processes may share: O_NONBLOCK there would have their writes fail with EAGAIN).
 * Through /proc (Linux); elsewhere, or for a pty's master side (reopened, /dev/ptmx makes another
 * pty), a write to a stalled terminal still blocks.
 */
function stdoutFd (): number {
  const fd = process.stdout.fd
  if (process.stdout.isTTY !== true) return fd
  try {
    if (fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('ptmx')) return fd
    return fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY)
  } catch {
    return fd
  }
}

let stdout: StdoutLines | undefined

/** The process's StdoutLines, one for every logger: its lines in the order logged. */
function bufferedStdout (): StdoutLines {
  if (stdout !== undefined) return stdout
  const lines = stdout = new StdoutLines()
  process.once('exit', () => { lines.writeAll() })
  return lines
}

/**
 * This process's stdout is shared with others writing at once (the primary and the workers): a line
 * longer than PIPE_BUF could be spliced with theirs, so, from now on, a longer one is cut to fit (fitted).
 */
export function shareStdout (): void {
  shared = true
}

/** Strings longer than this are cut first; then ever shorter ones, down to MIN_CUT, until the line fits. */
const MAX_CUT = 1024
const MIN_CUT = 64

/**
 * A JSON `line` too long for PIPE_BUF made to fit: its strings cut to MAX_CUT characters, then a
 * quarter of that, ... (each ending in `…(+N bytes)` for the N left out, as loggedPath marks a
 * path); should that not do (too many fields), its fields but objects (an error's message kept),
 * then its level, time, pid, worker, msg and, while they fit, its IDENTIFYING fields; with
 * `truncated`: the line's length in bytes. Each as `render` shows it, which must fit.
 */
function fitted (line: string, render: Render): string {
  const fields = JSON.parse(line) as Record<string, unknown>
  for (let max = MAX_CUT; max >= MIN_CUT; max /= 4) {
    const cut = render(`${JSON.stringify(fields, cutTo(max))}\n`)
    if (Buffer.byteLength(cut) <= PIPE_BUF) return cut
  }
  // Too many fields (a client's 300 headers): the line's own (requestId, status, route...), its
  // objects (headers) left out but an error's message; a client cannot hide who asked for what.
  const err = fields.err as { message?: unknown } | null | undefined
  const own = Object.fromEntries(Object.entries(fields).filter(([, value]) => value === null || typeof value !== 'object'))
  const kept = render(`${JSON.stringify({ ...own, ...(typeof err?.message === 'string' ? { err: { message: err.message } } : {}), truncated: Buffer.byteLength(line) }, cutTo(MIN_CUT))}\n`)
  if (Buffer.byteLength(kept) <= PIPE_BUF) return kept
  // Too many of the line's own (a plugin's 400 fields): who asked, and which route or plugin said it, still shown.
  const { level, time, pid, worker, msg } = fields
  const last: Record<string, unknown> = { level, time, pid, worker, msg: typeof msg === 'string' ? cutString(msg, MIN_CUT) : undefined }
  const truncated = Buffer.byteLength(line)
  let fit = render(`${JSON.stringify({ ...last, truncated })}\n`)
  for (const name of IDENTIFYING) {
    const value = fields[name]
    if (value === undefined || (value !== null && typeof value === 'object')) continue
    const shown = typeof value === 'string' ? cutString(value, MIN_CUT) : value
    const next = render(`${JSON.stringify({ ...last, [name]: shown, truncated })}\n`)
    if (Buffer.byteLength(next) > PIPE_BUF) continue
    last[name] = shown
    fit = next
  }
  return fit
}

/** The fields a line cut to its last fallback keeps, in this order, while they fit (see fitted). */
const IDENTIFYING = ['requestId', 'route', 'plugin', 'upstream', 'status', 'method', 'clientIp', 'consumer', 'error']

/** A JSON.stringify replacer cutting strings to `max` characters. */
const cutTo = (max: number) => (_: string, value: unknown): unknown => typeof value === 'string' ? cutString(value, max) : value

function cutString (value: string, max: number): string {
  if (value.length <= max) return value
  // Not between the halves of a surrogate pair.
  const at = max - (value.charCodeAt(max - 1) >= 0xd800 && value.charCodeAt(max - 1) <= 0xdbff ? 1 : 0)
  return `${value.slice(0, at)}…(+${Buffer.byteLength(value.slice(at))} bytes)`
}

/** Causes whose messages serializeErr reads; past that, pino's message (which has no such bound) is kept. */
const MAX_CAUSES = 100

/**
 * pino's error serializer, a cause's message left out where the text so far ends with it: pino
 * joins each cause's message to the error's, but a wrapper made as `${what}: ${cause.message}`
 * holds it already (`setup refused: setup refused`). The causes' stacks are joined as pino does.
 */
function serializeErr (err: Error): ReturnType<typeof pino.stdSerializers.err> {
  const shown = pino.stdSerializers.err(err)
  if ((shown as unknown) === err) return shown
  try {
    const message = messageOnce(err)
    if (message !== undefined) shown.message = message
  } catch { /* a getter that throws this time: pino's message */ }
  withholdPeerBytes(shown, Object.getPrototypeOf(shown) as object)
  return shown
}

/**
 * Error fields holding what a peer sent (or was sent), whatever the error's type: undici's
 * HTTPParserError's `data` (the rest of the chunk it read: an upstream's Set-Cookie, a token body,
 * an echoed Authorization; up to 64 KiB), Node's HTTP parser errors' `rawPacket` (a client's or
 * upstream's head), undici's ResponseError's `body` and `headers`. A deny-list: errors of the
 * gateway's own carry fields worth showing (a ConfigError's issues, a ListenError's port), and a
 * plugin's thrown value reaches the log through loggedThrown, which keeps primitive fields only.
 */
const PEER_FIELDS = ['data', 'rawPacket', 'body', 'headers'] as const

/**
 * `shown` (pino's serialized error) and the errors serialized within it (`aggregateErrors`, an
 * error-valued field: of prototype `proto`) without PEER_FIELDS: text or bytes as their length
 * (`dataBytes`), anything else left out; a peer certificate (`cert`) as certShown.
 */
function withholdPeerBytes (shown: Record<string, unknown>, proto: object): void {
  for (const name of PEER_FIELDS) {
    if (!Object.hasOwn(shown, name)) continue
    const value = shown[name]
    delete shown[name]
    if (typeof value === 'string') shown[`${name}Bytes`] = Buffer.byteLength(value)
    else if (value instanceof Uint8Array) shown[`${name}Bytes`] = value.byteLength
  }
  if (Object.hasOwn(shown, 'cert')) shown.cert = certShown(shown.cert)
  for (const value of Object.values(shown)) {
    for (const inner of Array.isArray(value) ? value as unknown[] : [value]) {
      if (inner !== null && typeof inner === 'object' && Object.getPrototypeOf(inner) === proto) withholdPeerBytes(inner as Record<string, unknown>, proto)
    }
  }
}

/**
 * A TLS error's peer certificate (Node's ERR_TLS_CERT_ALTNAME_INVALID holds the one whose names did
 * not match) as what tells which it is: its subject, names, issuer's CN, expiry and SHA-256
 * fingerprint. Whole, its DER bytes, public key and issuers' chain took kilobytes a line. Anything
 * else (a plugin's own `cert` field) as it is.
 */
function certShown (cert: unknown): unknown {
  if (cert === null || typeof cert !== 'object' || !('fingerprint256' in cert)) return cert
  const { subject, subjectaltname, issuer, valid_to: validTo, fingerprint256 } = cert as PeerCertificate
  return { subject, subjectaltname, issuer: { CN: issuer?.CN }, valid_to: validTo, fingerprint256 }
}

/** As pino-std-serializers' messageWithCauses, without a message the text ends with already. */
function messageOnce (err: Error): string | undefined {
  let text = err.message
  const seen = new Set<unknown>([err])
  let at: unknown = err
  for (let n = 0; n < MAX_CAUSES; n++) {
    const raw: unknown = (at as { cause?: unknown }).cause
    // A VError's cause(): its message holds its cause's (pino leaves it out likewise).
    const vError = typeof raw === 'function'
    const cause: unknown = vError ? (raw as () => unknown)() : raw
    const message = (cause as { message?: unknown } | null | undefined)?.message
    if (typeof message !== 'string') return text
    if (seen.has(cause)) return `${text}: ...`
    seen.add(cause)
    // Held already as the wrapper's last part (`${what}: ${cause.message}`), not as any suffix (`status 503`, a cause `03`).
    if (!vError && text !== message && !text.endsWith(`: ${message}`)) text += `: ${message}`
    at = cause
  }
  return undefined
}

const PRETTY: PrettyOptions = { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' }

/**
 * The process logger: JSON lines, or readable output when stdout is a terminal; either through
 * StdoutLines. Made readable here, as each line is logged (pino-pretty's prettyFactory, loaded only
 * then): pino's transport for it, a worker thread, held whatever stdout did not take, without bound
 * or count, and kept the process from exiting while its terminal took nothing.
 */
export function createLogger (options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true
  const lines = bufferedStdout()
  let destination: DestinationStream & Pick<StdoutLines, 'flush'> = lines
  if (pretty) {
    const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as { prettyFactory: (options: PrettyOptions) => Render }
    const full = prettyFactory(PRETTY)
    // Access lines, one a request, on one line of their own (accessPretty); the rarer others whole.
    const render: Render = line => (isAccess(line) ? accessPretty(line) : undefined) ?? full(line)
    destination = { write: line => { lines.write(line, render) }, flush: done => { lines.flush(done) } }
  }
  return pino({
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: REDACTION,
    serializers: { err: serializeErr }
  }, destination)
}
