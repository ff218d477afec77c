import { describeThrown, isError, loggedThrown } from './thrown.ts'
import { toSiblings } from '../workers/messages.ts'

type Maybe<T> = T | Promise<T>

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'DELETE'

/** A query string's parameters, decoded: a repeated one (`?a=1&a=2`) as the list of its values. */
export type PluginAdminQuery = Readonly<Record<string, string | readonly string[]>>

/** An admin API request to a plugin's endpoint (already past the admin token check). */
export interface PluginAdminRequest {
  readonly method: AdminMethod
  /** The path below /plugins/<plugin>, e.g. /purge. */
  readonly path: string
  readonly query: PluginAdminQuery
  /** The JSON body, if any. */
  readonly body: unknown
}

/** What a plugin's admin endpoint answers: a status (default 200) and a JSON body. */
export interface PluginAdminReply {
  readonly status?: number
  readonly body?: unknown
}

/** Returns nothing (undefined) for a 204. */
export type PluginAdminHandler = (req: PluginAdminRequest) => Maybe<PluginAdminReply | undefined | void>

/** What setup gets to add admin endpoints under /plugins/<plugin>/ (behind the admin token). */
export interface PluginAdmin {
  /**
   * Adds `method path` for this config. Endpoints belong to the plugin, not to one route: add them
   * once (from ctx.shared) and let the handler reach every route's state. A second add of the same
   * endpoint is an error.
   */
  route (method: AdminMethod, path: string, handler: PluginAdminHandler): void
  /**
   * Runs this plugin's endpoint `method path` on every other worker of the gateway (server.workers
   * above 1: each has its own memory stores), as the admin API would; resolves once they answered
   * or stopped being waited for. At once with one process: there is no other.
   */
  onOtherWorkers (method: AdminMethod, path: string, body: unknown): Promise<void>
}

const PATH_RE = /^(\/[A-Za-z0-9._~-]+)+$/

/** The plugin admin endpoints of one runtime. */
export class PluginAdminRoutes {
  readonly #handlers = new Map<string, PluginAdminHandler>()

  /** The PluginAdmin setup of `plugin` sees. */
  forPlugin (plugin: string): PluginAdmin {
    return {
      route: (method, path, handler) => {
        if (!PATH_RE.test(path)) throw new TypeError(`admin path "${path}" must start with / and use only letters, digits, . _ ~ -`)
        const key = `${method} /plugins/${plugin}${path}`
        if (this.#handlers.has(key)) throw new TypeError(`admin endpoint ${key} is already defined (add it once, from ctx.shared)`)
        this.#handlers.set(key, handler)
      },
      onOtherWorkers: (method, path, body) => toSiblings({ method, path: `/plugins/${plugin}${path}`, query: {}, body })
    }
  }

  /**
   * Runs the handler of `method fullPath`: its reply (its status and body only), or undefined when
   * it returned nothing or there is no handler (then `allowed` says which methods exist).
   */
  async dispatch (method: string, fullPath: string, query: PluginAdminQuery, body: unknown): Promise<PluginAdminReply | undefined> {
    const handler = this.#handlers.get(`${method} ${fullPath}`)
    if (handler === undefined) return undefined
    const sub = fullPath.slice(fullPath.indexOf('/', '/plugins/'.length))
    let reply: unknown
    try {
      reply = await handler({ method: method as AdminMethod, path: sub, query, body })
      if (reply === undefined || reply === null) return undefined
      // Picked: other fields (an `allowed`) are not the admin API's to read.
      if (typeof reply === 'object' && !Array.isArray(reply)) return { status: (reply as PluginAdminReply).status, body: (reply as PluginAdminReply).body }
    } catch (err) {
      // Whatever it threw (JS lets it throw null), answered 500 and logged as an Error naming the
      // endpoint; an Error thrown is its cause, as a copy pino can always serialize (a frozen Error, a throwing getter).
      throw new Error(`the plugin admin endpoint ${method} ${fullPath} failed: ${describeThrown(err)}`, isError(err) ? { cause: loggedThrown(err) } : undefined)
    }
    // `return 'hello'`: the body alone, not a reply.
    throw new TypeError(`the plugin admin endpoint ${method} ${fullPath} replied ${Array.isArray(reply) ? 'an array' : `a ${typeof reply}`}, not { status?, body? }`)
  }

  /** The methods `fullPath` answers (empty when none). */
  allowed (fullPath: string): string[] {
    return [...this.#handlers.keys()].filter(k => k.slice(k.indexOf(' ') + 1) === fullPath).map(k => k.slice(0, k.indexOf(' ')))
  }
}
