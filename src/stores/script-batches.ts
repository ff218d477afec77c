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
 * would end Redis's conversion of the array).
 */
export function batchLua (lua: string): string {
  return `local function one (KEYS, ARGV)
${lua}
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

/** The Redis Cluster hash tag of a key (the key itself when it has none): calls in one batch must share a slot. */
export function slotGroup (key: string | undefined): string {
  if (key === undefined) return ''
  const open = key.indexOf('{')
  const close = open < 0 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

export class ScriptBatches {
  readonly #send: BatchSender
  /** Group of a call by its first key: constant on a single server, the hash tag on Cluster. */
  readonly #groupOf: (firstKey: string | undefined) => string
  readonly #waiting = new Map<string, Call[]>()
  #scheduled = false

  constructor (send: BatchSender, groupOf: (firstKey: string | undefined) => string) {
    this.#send = send
    this.#groupOf = groupOf
  }

  call (keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const group = this.#groupOf(keys[0])
      let calls = this.#waiting.get(group)
      if (calls === undefined) this.#waiting.set(group, calls = [])
      calls.push({ keys, args, resolve, reject })
      if (calls.length >= MAX_BATCH) {
        this.#waiting.delete(group)
        this.#flush(calls)
      } else if (!this.#scheduled) {
        // After the poll phase: every request whose bytes arrived in this turn has made its call.
        this.#scheduled = true
        setImmediate(this.#flushAll)
      }
    })
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
      const list = results as unknown[]
      for (let i = 0; i < calls.length; i++) {
        const r = list[i]
        const c = calls[i] as Call
        if (r instanceof Error) c.reject(r); else c.resolve(r)
      }
    }, (err: Error) => { for (const c of calls) c.reject(err) })
  }
}
