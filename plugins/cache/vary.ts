type Headers = Readonly<Record<string, string | string[] | undefined>>

/** The header names a Vary value lists, lower-cased; ['*'] when it holds `*`. */
export function varyNames (vary: string | string[] | undefined): string[] {
  if (vary === undefined) return []
  const names = String(vary).toLowerCase().split(',').map(n => n.trim()).filter(n => n !== '')
  return names.includes('*') ? ['*'] : [...new Set(names)].sort()
}

/**
 * The secondary key of a request for these names: values normalized (whitespace around commas
 * dropped; the Accept-* family lower-cased, being case-insensitive), so equivalent requests share it.
 * `host`: the client's Host, which the gateway's request headers do not carry.
 */
export function variantKey (names: readonly string[], headers: Headers, host?: string | string[]): string {
  let k = ''
  for (const name of names) {
    const raw = name === 'host' ? host : headers[name]
    let v = raw === undefined ? '' : (Array.isArray(raw) ? raw.join(',') : raw).trim().replace(/\s*,\s*/g, ',')
    if (name.startsWith('accept')) v = v.toLowerCase()
    k += `|v:${name}=${v}`
  }
  return k
}
