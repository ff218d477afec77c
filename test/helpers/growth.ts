import { performance } from 'node:perf_hooks'

/**
 * How many times longer `run` takes per call on `make(16384)` than on `make(1024)`: about 16 when
 * its time is linear in the input's length, about 256 when quadratic. Each the least of 9 rounds
 * (noise only adds), after a warm-up call of each.
 */
export function growth (run: (input: string) => unknown, make: (length: number) => string): number {
  const small = make(1024)
  const large = make(16384)
  const perCall = (input: string, calls: number): number => {
    let least = Infinity
    for (let round = 0; round < 9; round++) {
      const start = performance.now()
      for (let i = 0; i < calls; i++) run(input)
      least = Math.min(least, (performance.now() - start) / calls)
    }
    return least
  }
  run(small)
  run(large)
  return perCall(large, 4) / perCall(small, 64)
}
