import { defineScript, type LocalData } from '../../src/index.ts'
import { charge, check, type AlgorithmCode } from './algorithms.ts'

/**
 * Decides every limit of a request at once. KEYS: one per limit. ARGV: per limit, four values:
 * algorithm code (s, t, f), quota, window ms, bucket size; then, optionally, a deadline (ms on the
 * server's clock): a call run after it (the gateway has given up on it, see ServerClock) decides
 * nothing and writes nothing, and returns [LATE, now]. Nothing is written unless every limit
 * lets the request through, so a request one limit rejects is not counted by the others.
 * Returns [allowed (1|0), then per limit: ok (1|0), remaining, ms (reset, or retry when not ok or
 * when this request took the last one that fits: see Check in algorithms.ts), then now (ms)].
 * Time comes from the Redis server (TIME) so that instances with skewed clocks agree. A stored
 * window one ahead of TIME (its clock stepped back) stays the current one, written back as it was
 * with its expiry's instant; further ahead, or a number past 2^53 (no state this script wrote), is
 * no state: see current() in algorithms.ts.
 */
const LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local deadline = tonumber(ARGV[4 * n + 1])
if deadline and now > deadline then return {-1, now} end
-- A stored integer, or nil past 2^53 (a PX or %d from it would fail the whole call).
local function int (x)
  local v = tonumber(x)
  if v and v <= 9007199254740992 then return v end
end
local res = {1}
local states, ttls = {}, {}
for i = 1, n do
  local a, q, w, b = ARGV[4 * i - 3], tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])
  local v = redis.call('GET', KEYS[i])
  local ok, free, ms, st, ttl = 0, 0, 0, '', 0
  if a == 's' then
    local idx = math.floor(now / w)
    local cw, c, p = -1, 0, 0
    if v then
      local x, y, z = string.match(v, '^(%d+) (%d+) (%d+)$')
      x, y, z = int(x), int(y), int(z)
      if x and y and z then cw, c, p = x, y, z end
    end
    if cw == idx or cw == idx + 1 then
      idx = cw
    else
      if cw == idx - 1 then p = c else p = 0 end
      c = 0
    end
    local e = now - idx * w
    local est = p * (w - math.max(e, 0)) / w + c
    -- k: the count a wait is computed for; the last request that fits reports the next one's wait.
    local k = c
    if est + 1 <= q then
      ok, free, ms, st, ttl = 1, math.floor(q - est), 2 * w - e, string.format('%d %d %d', idx, c + 1, p), 2 * w - e
      k = c + 1
    end
    if ok == 0 or free == 1 then
      if k + 1 <= q then
        ms = math.ceil(w - w * (q - k - 1) / p - e)
      else
        ms = math.ceil(w - e + math.max(0, w * (1 - (q - 1) / k)))
      end
    end
  elseif a == 't' then
    local em = w / q
    local tau = b * em
    local tat = tonumber(v) or now
    if tat < now then tat = now end
    free = math.floor((tau - (tat - now)) / em + 1e-6)
    if free >= 1 then
      local nxt = tat + em
      local us = math.floor(nxt * 1000 + 0.5)
      ok, ms, st, ttl = 1, math.ceil(nxt - now), string.format('%d.%03d', math.floor(us / 1000), us % 1000), math.max(1, math.ceil(nxt - now))
      if free == 1 then ms = math.ceil(tat + 2 * em - tau - now) end
    else
      free, ms = 0, math.ceil(tat + em - tau - now)
    end
  else
    local idx = math.floor(now / w)
    local c = 0
    if v then
      local x, y = string.match(v, '^(%d+) (%d+)$')
      x, y = int(x), int(y)
      if x and y and (x == idx or x == idx + 1) then idx, c = x, y end
    end
    local e = now - idx * w
    free, ms = q - c, w - e
    if free >= 1 then ok, st, ttl = 1, string.format('%d %d', idx, c + 1), w - e else free = 0 end
  end
  if ok == 0 then res[1] = 0 end
  res[3 * i - 1], res[3 * i], res[3 * i + 1] = ok, free, ms
  states[i], ttls[i] = st, ttl
end
if res[1] == 1 then
  for i = 1, n do
    redis.call('SET', KEYS[i], states[i], 'PX', ttls[i])
    res[3 * i] = res[3 * i] - 1
  end
end
res[3 * n + 2] = now
return res
`

/** The first value of the answer to a call run after its deadline. */
export const LATE = -1

function local (data: LocalData, keys: readonly string[], args: readonly string[], now: number): number[] {
  const n = keys.length
  if (args.length > 4 * n && now > Number(args[4 * n])) return [LATE, now]
  // Sized once (pushes would grow them on every request): about 10% of a decision in a loop.
  const res = new Array<number>(2 + 3 * n)
  const stored = new Array<unknown>(n)
  res[0] = 1
  for (let i = 0; i < n; i++) {
    const v = data.get(keys[i] as string)
    const c = check(args[4 * i] as AlgorithmCode, Number(args[4 * i + 1]), Number(args[4 * i + 2]), Number(args[4 * i + 3]), v, now)
    if (!c.ok) res[0] = 0
    res[3 * i + 1] = c.ok ? 1 : 0
    res[3 * i + 2] = c.free
    res[3 * i + 3] = c.ms
    stored[i] = v
  }
  if (res[0] === 1) {
    for (let i = 0; i < n; i++) {
      const write = charge(args[4 * i] as AlgorithmCode, Number(args[4 * i + 1]), Number(args[4 * i + 2]), stored[i], now)
      if (write !== undefined) data.set(keys[i] as string, write.state, write.ttlMs)
      res[3 * i + 2] = (res[3 * i + 2] as number) - 1
    }
  }
  res[1 + 3 * n] = now
  return res
}

export const decideScript = defineScript<number[]>({ name: 'rate-limit-decide', lua: LUA, local })
