/**
 * A copy of `value`, a config's data, with everything in it frozen: what plugins are handed cannot
 * change what others see. Plain data only (objects, arrays and what they hold), which a config is:
 * toData refuses what YAML tags make (bytes, a Set, a Map, a Date, none of them freezable). Shared
 * parts (YAML aliases) stay shared.
 */
export function frozenCopy<T> (value: T): T {
  return copyOf(value, new Map()) as T
}

function copyOf (v: unknown, seen: Map<object, unknown>): unknown {
  if (typeof v !== 'object' || v === null) return v
  const known = seen.get(v)
  if (known !== undefined) return known
  if (Array.isArray(v)) {
    const array = new Array<unknown>(v.length)
    seen.set(v, array)
    for (let i = 0; i < v.length; i++) array[i] = copyOf(v[i], seen)
    return Object.freeze(array)
  }
  const object: Record<string, unknown> = {}
  seen.set(v, object)
  // Defined, not assigned: a `__proto__` key is data here, not the copy's prototype.
  for (const k of Object.keys(v)) {
    const value = copyOf((v as Record<string, unknown>)[k], seen)
    if (k === '__proto__') Object.defineProperty(object, k, { value, enumerable: true, writable: true })
    else object[k] = value
  }
  return Object.freeze(object)
}
