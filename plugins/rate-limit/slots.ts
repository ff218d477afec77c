import type { Store } from '../../src/index.ts'
import { decideScript, LATE } from './decide-script.ts'
import type { Decision } from './headers.ts'
import { slotPart } from './keys.ts'
import type { Limit, Plan, Plans } from './plans.ts'

/** One script call of a plan split by slot: the positions of its limits in the plan, and their ARGV. */
export interface SlotCall { readonly at: readonly number[], readonly args: readonly string[] }

/**
 * On Redis Cluster the keys of one script call must share a slot, and a limit's key has its own
 * hash tag (its first key part): a plan whose limits have different first parts is decided by one
 * call per part, in parallel. The plans whose limits all share one part are left out (one call).
 */
export function slotCalls (plans: Plans, byOf: (l: Limit) => readonly string[]): Map<Plan, readonly SlotCall[]> {
  const out = new Map<Plan, readonly SlotCall[]>()
  for (const plan of [plans.base, ...plans.byConsumer.values()]) {
    const groups = new Map<string, number[]>()
    plan.limits.forEach((l, i) => {
      const part = slotPart(byOf(l))
      const at = groups.get(part)
      if (at === undefined) groups.set(part, [i]); else at.push(i)
    })
    if (groups.size < 2) continue
    out.set(plan, [...groups.values()].map(at => ({ at, args: at.flatMap(i => plan.args.slice(4 * i, 4 * i + 4)) })))
  }
  return out
}

/**
 * Runs a split plan's calls and merges their answers into one decision, as one call would give,
 * with the latest store time of them. Each call is atomic on its own: a request one call rejects is
 * still counted by the calls that allowed it, and so is one that a call ran too late for (LATE).
 * `deadline`: see decideScript, 0 for none.
 */
export function decideBySlot (store: Store, calls: readonly SlotCall[], keys: readonly string[], plan: Plan, deadline: number): Promise<Decision> {
  const n = plan.limits.length
  return Promise.all(calls.map(c => store.run(decideScript, c.at.map(i => keys[i] as string), deadline === 0 ? c.args : [...c.args, deadline]))).then(answers => {
    const d = new Array<number>(2 + 3 * n)
    d[0] = 1
    d[1 + 3 * n] = 0
    for (let k = 0; k < calls.length; k++) {
      const answer = answers[k] as Decision
      d[1 + 3 * n] = Math.max(d[1 + 3 * n] as number, answer[answer.length - 1] as number)
      if (answer[0] === LATE) d[0] = LATE
      if (d[0] === LATE) continue
      const at = (calls[k] as SlotCall).at
      if (answer[0] !== 1) d[0] = 0
      for (let j = 0; j < at.length; j++) {
        const i = at[j] as number
        d[3 * i + 1] = answer[3 * j + 1] as number
        d[3 * i + 2] = answer[3 * j + 2] as number
        d[3 * i + 3] = answer[3 * j + 3] as number
      }
    }
    return d
  })
}
