import { readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'

/** The file the system resolver reads names from before asking the DNS (nsswitch.conf's `files`). */
export const HOSTS_FILE = '/etc/hosts'

/** What tells a version of `path` from another (inode, size, change times); '' if it cannot be read. */
export async function fileStamp (path: string): Promise<string> {
  return await stat(path, { bigint: true }).then(s => `${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`, () => '')
}

/** The last file hostsFileNames parsed, kept while it is unchanged: parsing a large one (11 MB) holds the event loop ~300 ms. */
let parsed: { path: string, stamp: string, names: Promise<ReadonlySet<string>> } | undefined

/**
 * The names `path` gives an address, lower-cased; none if it cannot be read. Parsed again only when
 * the file changes (see fileStamp): an entry added while the gateway runs (an emergency address)
 * counts at once. Read rather than asked of the system resolver: a name not there goes on to the
 * DNS, and a lookup the DNS never answers holds its thread (and the process's exit) ~10 s.
 */
export async function hostsFileNames (path = HOSTS_FILE): Promise<ReadonlySet<string>> {
  const stamp = await fileStamp(path)
  if (parsed?.path !== path || parsed.stamp !== stamp) {
    // Read after the stat: a change between the two is read now, and parsed again at the next call.
    parsed = { path, stamp, names: stamp === '' ? Promise.resolve(new Set()) : readFile(path, 'latin1').then(parse, () => new Set()) }
  }
  return await parsed.names
}

function parse (text: string): Set<string> {
  const names = new Set<string>()
  for (const line of text.split('\n')) {
    const [address, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/)
    // glibc reads no zone ID (fe80::1%lo): such a line gives its names nothing.
    if (address !== undefined && isIP(address) !== 0 && !address.includes('%')) for (const name of aliases) names.add(name.toLowerCase())
  }
  return names
}
