/** A copy of `value` (a config's: plain data) with everything in it frozen: what plugins are handed cannot change what others see. */
export function frozenCopy<T> (value: T): T {
  const copy = structuredClone(value)
  const stack: unknown[] = [copy]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) continue
    Object.freeze(v)
    for (const inner of Object.values(v)) stack.push(inner)
  }
  return copy
}
