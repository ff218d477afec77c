import type { PluginDefinition } from '../plugins/contract.ts'
import { DEFAULT_STORE } from '../stores/registry.ts'
import { didYouMean } from './suggest.ts'
import type { SchemaReferences } from './schema-refs.ts'
import { hideUrlSecrets, PORT_NOT_A_NUMBER } from './url-userinfo.ts'
import { validateSchema, type SchemaProblem } from './validate.ts'
import type { GatewayConfig } from './schema.ts'
import { describeThrown } from '../plugins/thrown.ts'
import { toMs } from './duration.ts'

type Add = (path: Array<string | number>, message: string, at?: 'key' | 'value') => void

/** `stores:`: one way to reach Redis per store, and `memory` kept a memory store. */
export function checkStores (config: GatewayConfig, add: Add): void {
  for (const [name, s] of Object.entries(config.stores ?? {})) {
    const here = ['stores', name]
    if (s.type === 'memory') continue
    if (name === DEFAULT_STORE) { add([...here, 'type'], `the store named "${DEFAULT_STORE}" is the built-in memory store: give this one another name`); continue }
    const ways = (['url', 'sentinels', 'cluster'] as const).filter(k => s[k] !== undefined)
    if (ways.length !== 1) add(here, ways.length === 0 ? 'needs one of url, sentinels (with name) or cluster' : `use one of url, sentinels or cluster, not ${ways.join(' and ')}`, 'key')
    if (s.sentinels !== undefined && s.name === undefined) add(here, 'sentinels needs name: the primary the sentinels monitor', 'key')
    if (s.name !== undefined && s.sentinels === undefined) add([...here, 'name'], 'name is for sentinels only')
    if (s.cluster !== undefined && s.db !== undefined) add([...here, 'db'], 'Redis Cluster has only database 0')
    // The schema lets `secret@host:port` through (a host of any characters): it is never quoted.
    for (const key of ['sentinels', 'cluster'] as const) {
      const keys = key === 'sentinels' ? 'sentinelUsername and sentinelPassword (the sentinels\' own; username and password are the primary\'s)' : 'username and password'
      s[key]?.forEach((node, i) => { if (node.includes('@')) add([...here, key, i], `must be host:port only: give the user and password in the ${keys} keys`) })
    }
    // No call may wait for ever: a stalled Redis would hold every request that asks it.
    if (s.commandTimeout !== undefined && toMs(s.commandTimeout) === 0) add([...here, 'commandTimeout'], 'must be more than 0: every call to the store is bounded (leave it out for 100ms)')
    if (s.connectTimeout !== undefined && toMs(s.connectTimeout) === 0) add([...here, 'connectTimeout'], 'must be more than 0: it is how long a connection may take to open (leave it out for 2s)')
    const mistake = s.url === undefined ? undefined : redisUrlMistake(s.url)
    if (mistake !== undefined) add([...here, 'url'], mistake)
  }
}

/**
 * What keeps a redis:// URL from being used (Redis would only fail on it when the store is
 * created), said with its user, password and query values hidden.
 */
export function redisUrlMistake (url: string): string | undefined {
  const shown = `"${hideUrlSecrets(url)}"`
  // The user and password, and the host and port as meant, as hideUrlSecrets reads them: split at
  // the last @ (a password may hold an unencoded space, # ? / or @; a database number never an @).
  const rest = url.replace(/^rediss?:\/\//, '')
  const at = rest.lastIndexOf('@')
  const userinfo = at === -1 ? undefined : rest.slice(0, at)
  const hostPort = /^[^/?#]*/.exec(rest.slice(at + 1))?.[0] ?? ''
  const port = /^(?:\[[^\]]*\]|[^:[\]]*):([^:]*)$/.exec(hostPort)?.[1]
  if (port !== undefined && !/^\d*$/.test(port)) return userinfo === undefined ? PORT_NOT_A_NUMBER : `${shown}: the port "${port}" is not a number`
  if (port !== undefined && port !== '' && (Number(port) < 1 || Number(port) > 65535)) return `${shown}: port ${port} is out of range (1-65535)`
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    if (userinfo !== undefined && /[#?/@\s]/.test(userinfo)) {
      return `${shown} is not a valid URL: percent-encode # ? / @ and spaces in the user or password (# as %23, @ as %40), or give the password in the password key`
    }
    if (/\s/.test(hostPort)) return `${shown} is not a valid URL: the host has a space`
    if (hostPort.startsWith('[') && !hostPort.includes(']')) return `${shown} is not a valid URL: an IPv6 address needs its closing bracket, e.g. redis://[::1]:6379`
    if (hostPort.includes(':') && !hostPort.startsWith('[') && hostPort.indexOf(':') !== hostPort.lastIndexOf(':')) {
      return `${shown} is not a valid URL: put an IPv6 address in brackets, e.g. redis://[::1]:6379`
    }
    return `${shown} is not a valid URL`
  }
  if (parsed.hostname === '') return `${shown} has no host`
  if (!/^(?:\/\d*)?$/.test(parsed.pathname)) return `${shown}: the path can only be a database number, e.g. /0`
  // The Redis client decodes them, and throws on a % that starts no escape (or escapes of no UTF-8) when the store is created.
  for (const [part, text] of [['user', parsed.username], ['password', parsed.password]] as const) {
    if (!decodes(text)) return `${shown}: the ${part} has a % that is no percent-escape of UTF-8: write % itself as %25, or give the ${part} in the ${part === 'user' ? 'username' : 'password'} key`
  }
  return undefined
}

/** Whether decodeURIComponent takes `text`. */
function decodes (text: string): boolean {
  try {
    decodeURIComponent(text)
    return true
  } catch {
    return false
  }
}

/**
 * `consumers:`: unique ids; metadata.<plugin> valid against that plugin's consumerMetadata schema; credentials only for plugins that take them, each valid against that
 * plugin's credential schema; no credential shared by two consumers. Both with their references and file paths (`refs`), as plugin configs.
 */
export function checkConsumers (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, refs: SchemaReferences, problems: SchemaProblem[], add: Add): void {
  const ids = new Map<string, number>()
  const owners = new Map<string, number>()
  const takers = [...plugins.values()].filter(p => p.credentials !== undefined).map(p => p.name)
  for (const [i, c] of (config.consumers ?? []).entries()) {
    const first = ids.get(c.id)
    if (first !== undefined) add(['consumers', i, 'id'], `consumer id "${c.id}" is already used by consumers[${first}]`)
    else ids.set(c.id, i)
    for (const [name, value] of Object.entries(c.metadata ?? {})) {
      const schema = plugins.get(name)?.consumerMetadata
      if (schema === undefined) continue
      const here = ['consumers', i, 'metadata', name]
      const found = validateSchema(schema, value)
      for (const p of found) problems.push({ ...p, path: [...here, ...p.path] })
      if (found.length === 0) refs(schema, value, here)
    }
    for (const [name, credential] of Object.entries(c.credentials ?? {})) {
      const here = ['consumers', i, 'credentials', name]
      const spec = plugins.get(name)?.credentials
      if (spec === undefined) { add(here, `no plugin "${name}" takes credentials${didYouMean(name, takers)}${takers.length > 0 ? ` (these do: ${takers.join(', ')})` : ''}`, 'key'); continue }
      const found = validateSchema(spec.schema, credential)
      for (const p of found) problems.push({ ...p, path: [...here, ...p.path] })
      if (found.length > 0) continue
      refs(spec.schema, credential, here)
      let identities: unknown
      try {
        identities = spec.identities?.(credential as never) ?? [JSON.stringify(credential)]
      } catch (err) {
        // A user plugin's: its failure, at the credential, not a crash of the whole check.
        add(here, `plugin ${name}'s credentials.identities failed: ${describeThrown(err)}`); continue
      }
      if (!Array.isArray(identities)) { add(here, `plugin ${name}'s credentials.identities returned ${typeof identities}, not an array of strings`); continue }
      for (const identity of identities) {
        const key = `${name}\u0000${identity}`
        const owner = owners.get(key)
        if (owner !== undefined && owner !== i) add(here, `the same ${name} credential is given to consumers[${owner}] ("${config.consumers?.[owner]?.id}")`)
        else owners.set(key, i)
      }
    }
  }
}
