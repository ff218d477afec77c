import { frozenCopy } from '../config/frozen-copy.ts'
/** Someone who calls the APIs behind the gateway, as `consumers:` declares them. */
export interface Consumer {
  readonly id: string
  readonly groups: readonly string[]
  readonly metadata: Readonly<Record<string, unknown>>
}

/** One consumer's credential for one auth plugin (`consumers[].credentials.<plugin>`), as validated. */
export interface ConsumerCredential<C = unknown> {
  readonly consumer: Consumer
  readonly credential: C
}

interface ConsumerConfig { id: string, groups?: string[], metadata?: Record<string, unknown>, credentials?: Record<string, unknown> }

/**
 * Every consumer of one config, built once at load: lookups by id, and each auth plugin's credentials.
 * What it hands out is frozen through and through (copies, the config's own left as they are): a
 * plugin changing it would change what every later plugin, route and request sees (add a key to
 * key-auth's index, say).
 */
export class Consumers {
  readonly all: readonly Consumer[]
  readonly #byId: ReadonlyMap<string, Consumer>
  readonly #credentials: ReadonlyMap<string, readonly ConsumerCredential[]>

  constructor (configs: readonly ConsumerConfig[] = []) {
    const all: Consumer[] = []
    const credentials = new Map<string, ConsumerCredential[]>()
    for (const c of configs) {
      // Each group once: a repeated one would be sent upstream twice (x-consumer-groups: admins,admins).
      const consumer = Object.freeze({ id: c.id, groups: Object.freeze([...new Set(c.groups)]), metadata: frozenCopy(c.metadata ?? {}) })
      all.push(consumer)
      for (const [plugin, credential] of Object.entries(c.credentials ?? {})) {
        let list = credentials.get(plugin)
        if (list === undefined) credentials.set(plugin, list = [])
        list.push(Object.freeze({ consumer, credential: frozenCopy(credential) }))
      }
    }
    for (const list of credentials.values()) Object.freeze(list)
    this.all = Object.freeze(all)
    this.#byId = new Map(all.map(c => [c.id, c]))
    this.#credentials = credentials
  }

  get (id: string): Consumer | undefined { return this.#byId.get(id) }

  /** The credentials consumers hold for `plugin` (frozen). */
  credentialsFor (plugin: string): readonly ConsumerCredential[] { return this.#credentials.get(plugin) ?? NONE }
}

const NONE: readonly ConsumerCredential[] = Object.freeze([])
