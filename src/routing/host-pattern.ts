/** Lower-cased host without port or trailing dot: `API.Example.com.:8080` → `api.example.com`. */
export function normalizeHost (host: string | undefined): string {
  if (host === undefined || host === '') return ''
  let h = host
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']')
    h = end === -1 ? h : h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) h = h.slice(0, colon)
  }
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h.toLowerCase()
}

export type HostPattern = { kind: 'exact', host: string } | { kind: 'wildcard', suffix: string }

/** `api.example.com` is exact; `*.example.com` matches any sub-domain (not example.com itself). */
export function parseHostPattern (pattern: string): HostPattern | string {
  const p = pattern.toLowerCase()
  if (p.startsWith('*.')) {
    const suffix = p.slice(1)
    return suffix.includes('*') ? 'only a leading "*." wildcard is allowed' : { kind: 'wildcard', suffix }
  }
  if (p.includes('*')) return 'only a leading "*." wildcard is allowed'
  // An IPv6 literal's colons are inside its brackets: a colon after them is a port.
  if ((p.startsWith('[') ? p.slice(p.indexOf(']') + 1) : p).includes(':')) return 'must not include a port'
  return { kind: 'exact', host: normalizeHost(p) }
}

/** Whether `host` (already normalized) is one a pattern matches. */
export function hostMatches (pattern: HostPattern, host: string): boolean {
  return pattern.kind === 'exact' ? pattern.host === host : host.endsWith(pattern.suffix)
}
