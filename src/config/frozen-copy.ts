/**
 * A copy of `value` (a config's data) with everything in it frozen: what plugins are handed cannot
 * change what others see. Plain objects and arrays are copied and frozen; what YAML tags make
 * (`!!binary` bytes, `!!set`, `!!omap`, `!!timestamp`) is copied, its contents frozen, though
 * bytes, a Set or a Map cannot be frozen themselves. Shared parts (YAML aliases) stay shared.
 */
export function frozenCopy<T> (value: T): T {
  return copyOf(value, new Map()) as T
}

function copyOf (v: unknown, seen: Map<object, unknown>): unknown {
  if (typeof v !== 'object' || v === null) return v
  const known = seen.get(v)
  if (known !== undefined) return known
  if (ArrayBuffer.isView(v)) {
    const bytes = v instanceof DataView ? new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)) : (v as Uint8Array).slice()
    seen.set(v, bytes)
    return bytes
  }
  if (v instanceof Date) return remember(v, Object.freeze(new Date(v.getTime())), seen)
  if (v instanceof Map) {
    const map = remember(v, new Map(), seen)
    for (const [k, value] of v) map.set(copyOf(k, seen), copyOf(value, seen))
    return Object.freeze(map)
  }
  if (v instanceof Set) {
    const set = remember(v, new Set(), seen)
    for (const value of v) set.add(copyOf(value, seen))
    return Object.freeze(set)
  }
  if (Array.isArray(v)) {
    const array = remember(v, new Array<unknown>(v.length), seen)
    for (let i = 0; i < v.length; i++) array[i] = copyOf(v[i], seen)
    return Object.freeze(array)
  }
  const object = remember(v, {} as Record<string, unknown>, seen)
  // Defined, not assigned: a `__proto__` key is data here, not the copy's prototype.
  for (const k of Object.keys(v)) {
    const value = copyOf((v as Record<string, unknown>)[k], seen)
    if (k === '__proto__') Object.defineProperty(object, k, { value, enumerable: true, writable: true })
    else object[k] = value
  }
  return Object.freeze(object)
}

function remember<C> (original: object, copy: C, seen: Map<object, unknown>): C {
  seen.set(original, copy)
  return copy
}
