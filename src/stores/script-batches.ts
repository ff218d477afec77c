/**
 * Coalesces calls of one store script made in the same turn of the event loop (the rate-limit
 * decisions of many concurrent requests) into one EVALSHA: one command to encode, send, run and
 * parse instead of one per call. Each call still runs whole and alone inside the batch (Redis runs
 * a script atomically, and the batch runs its calls one after the other), so results are exactly
 * those of separate calls.
 */

/** Most calls per batch: bounds one script's run time on the server and the size of its reply. */
const MAX_BATCH = 256

/**
 * The script wrapped to run many calls. ARGV: the number of calls, each call's key and argument
 * counts, then every call's arguments; KEYS: every call's keys. Returns one result per call, an
 * error reply in the place of a call that failed (the others are unaffected), false for nil (a nil
 * would end Redis's conversion of the array). The script starts on the wrapper's first line, so
 * the line numbers in its errors are its own.
 */
export function batchLua (lua: string): string {
  return `local function one (KEYS, ARGV) ${lua}
end
local calls = tonumber(ARGV[1])
local out, k, a = {}, 0, 2 + 2 * calls
for i = 1, calls do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local ks, as = {}, {}
  for j = 1, nk do ks[j] = KEYS[k + j] end
  for j = 1, na do as[j] = ARGV[a + j - 1] end
  k, a = k + nk, a + na
  local ok, r = pcall(one, ks, as)
  if not ok then r = redis.error_reply(type(r) == 'table' and r.err or tostring(r)) end
  if r == nil then r = false end
  out[i] = r
end
return out
`
}

interface Call {
  readonly keys: readonly string[]
  readonly args: readonly (string | number)[]
  readonly resolve: (value: unknown) => void
  readonly reject: (err: Error) => void
}

/** Sends one batch: all keys, then ARGV as batchLua reads it; resolves to one result (or Error) per call. */
export type BatchSender = (keys: string[], args: Array<string | number>) => Promise<unknown>

/** Where a key's Redis Cluster hash tag starts (after its `{`), 0 when it has none: the whole key then decides its slot. */
function groupStart (key: string): number {
  const open = key.indexOf('{')
  return open >= 0 && key.indexOf('}', open + 1) > open + 1 ? open + 1 : 0
}

/** Where the slot group starting at `start` ends. */
const groupEnd = (key: string, start: number): number => start === 0 ? key.length : key.indexOf('}', start)

/** The Redis Cluster hash tag of a key (the key itself when it has none): calls in one batch must share a slot. */
export function slotGroup (key: string | undefined): string {
  if (key === undefined) return ''
  const start = groupStart(key)
  return start === 0 ? key : key.slice(start, groupEnd(key, start))
}

/**
 * Whether every key has the first one's slot group, compared in place (no string made: this runs on
 * every call). A call whose keys do not is sent alone: its CROSSSLOT error is then its own.
 */
export function oneSlotGroup (keys: readonly string[]): boolean {
  if (keys.length < 2) return true
  const first = keys[0] as string
  const start = groupStart(first)
  const length = groupEnd(first, start) - start
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string
    const s = groupStart(key)
    if (groupEnd(key, s) - s !== length) return false
    for (let j = 0; j < length; j++) if (key.charCodeAt(s + j) !== first.charCodeAt(start + j)) return false
  }
  return true
}

export class ScriptBatches {
  readonly #send: BatchSender
  /** On Redis Cluster: calls are grouped by their first key's slot group, and a call whose keys span groups goes alone. */
  readonly #cluster: boolean
  readonly #waiting = new Map<string, Call[]>()
  #scheduled = false

  constructor (send: BatchSender, cluster: boolean) {
    this.#send = send
    this.#cluster = cluster
  }

  call (keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.#cluster) return this.#wait('', { keys, args, resolve, reject })
      if (oneSlotGroup(keys)) return this.#wait(slotGroup(keys[0]), { keys, args, resolve, reject })
      // Keys in several groups, likely several slots: Redis refuses the batch it is in as a whole.
      this.#flush([{ keys, args, resolve, reject }])
    })
  }

  #wait (group: string, call: Call): void {
    let calls = this.#waiting.get(group)
    if (calls === undefined) this.#waiting.set(group, calls = [])
    calls.push(call)
    if (calls.length >= MAX_BATCH) {
      this.#waiting.delete(group)
      this.#flush(calls)
    } else if (!this.#scheduled) {
      // After the poll phase: every request whose bytes arrived in this turn has made its call.
      this.#scheduled = true
      setImmediate(this.#flushAll)
    }
  }

  readonly #flushAll = (): void => {
    this.#scheduled = false
    for (const calls of this.#waiting.values()) this.#flush(calls)
    this.#waiting.clear()
  }

  #flush (calls: readonly Call[]): void {
    const keys: string[] = []
    const args: Array<string | number> = [calls.length]
    for (const c of calls) args.push(c.keys.length, c.args.length)
    for (const c of calls) {
      for (const k of c.keys) keys.push(k)
      for (const a of c.args) args.push(a)
    }
    let sent: Promise<unknown>
    try {
      sent = this.#send(keys, args)
    } catch (err) {
      // Thrown in a setImmediate callback, it would take the process down: fail the calls instead.
      sent = Promise.reject(err as Error)
    }
    sent.then(results => {
      // Not one result per call (a server or proxy that answers the script otherwise): each call
      // fails; list[i] of a nil reply would throw here, an unhandled rejection, the calls left pending.
      if (!Array.isArray(results) || results.length < calls.length) {
        const err = new Error(`the batched store script replied ${Array.isArray(results) ? `${results.length} results for ${calls.length} calls` : String(results)}`)
        for (const c of calls) c.reject(err)
        return
      }
      const list = results as unknown[]
      for (let i = 0; i < calls.length; i++) {
        const r = list[i]
        const c = calls[i] as Call
        // nil (false in the array) is undefined, as a missing key is to get().
        if (r instanceof Error) c.reject(r); else c.resolve(r === null ? undefined : r)
      }
    }, (err: Error) => { for (const c of calls) c.reject(err) })
  }
}
