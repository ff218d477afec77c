import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'

/** The file the system resolver reads names from before asking the DNS (nsswitch.conf's `files`). */
export const HOSTS_FILE = '/etc/hosts'

/**
 * The names `path` gives an address, lower-cased; none if it cannot be read. Read at each call (a
 * small file): an entry added while the gateway runs (an emergency address) counts at once. Read
 * rather than asked of the system resolver: a name not there goes on to the DNS, and a lookup the
 * DNS never answers holds its thread (and the process's exit) ~10 s.
 */
export async function hostsFileNames (path = HOSTS_FILE): Promise<Set<string>> {
  const names = new Set<string>()
  const text = await readFile(path, 'latin1').catch(() => '')
  for (const line of text.split('\n')) {
    const [address, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/)
    if (address !== undefined && isIP(address) !== 0) for (const name of aliases) names.add(name.toLowerCase())
  }
  return names
}
