/**
 * How many timers `read` sets when called once per event-loop turn, the clock moving on between
 * turns as between a server's requests (a loop that never yields would hide a timer that fires).
 */
export async function timersSetBy (read: (turn: number) => void, turns = 3): Promise<number> {
  const real = globalThis.setTimeout
  let timers = 0
  const counting = ((...a: Parameters<typeof real>) => { timers++; return real(...a) }) as typeof real
  for (let turn = 0; turn < turns; turn++) {
    globalThis.setTimeout = counting
    try {
      read(turn)
    } finally {
      globalThis.setTimeout = real
    }
    await new Promise(resolve => real(resolve, 2))
  }
  return timers
}
