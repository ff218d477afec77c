/** Which config key sets a listener's address, for messages that tell the user what to change. */
export type ListenerKey = 'server.listen' | 'server.http2.h2c.listen' | 'server.tls.redirectHttp.listen' | 'admin.listen'

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another gateway, or another program, listens there)',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'this machine has no such address',
  // A host name, looked up before binding: one that does not resolve, or a DNS server that did not answer.
  ENOTFOUND: 'no such host name (it does not resolve to an address)',
  EAI_AGAIN: 'the host name could not be resolved now (DNS did not answer)',
  // A link-local IPv6 address without its interface (fe80::1 for fe80::1%eth0): no socket can bind it.
  EINVAL: 'the address cannot be bound here (a link-local IPv6 address such as fe80::1 needs its interface: fe80::1%eth0)'
}

/** The reasons that are the host's (the rest are the port's): which key to change. */
export const HOST_REASONS: ReadonlySet<string> = new Set(['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EINVAL'])

/** A listener could not bind: says where, why, and which key sets it. */
export class ListenError extends Error {
  readonly code = 'PCL_ERR_LISTEN'
  readonly key: ListenerKey
  readonly host: string
  readonly port: number
  readonly reason: string
  constructor (key: ListenerKey, host: string, port: number, reason: string, options: { cause: unknown }) {
    super(`cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port} (${key}): ${REASONS[reason] ?? reason}`, options)
    this.name = 'ListenError'
    this.key = key
    this.host = host
    this.port = port
    this.reason = reason
  }
}

/** Runs `listen`, turning the errors a user can fix by changing the config into a ListenError. */
export async function listenAs<T> (key: ListenerKey, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen()
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== undefined && code in REASONS) throw new ListenError(key, host, port, code, { cause: err })
    throw err
  }
}
