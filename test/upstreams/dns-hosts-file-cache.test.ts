import t from 'tap'
import { appendFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hostsFileNames } from '../../src/upstreams/hosts-file.ts'

// The hosts file was read and parsed on the event loop for each slow name at each round: an 11 MB one
// took 250-350 ms each time. And a line whose address has a zone ID, which glibc does not read, gave
// its names an address.

t.test('the hosts file is parsed again only once it changes', async t => {
  const path = join(t.testdir({}), 'hosts')
  writeFileSync(path, '127.0.0.1 localhost\n' + Array.from({ length: 50_000 }, (_, i) => `10.0.${i >> 8 & 255}.${i & 255} host${i}.test alias${i}.test\n`).join(''))
  const first = await hostsFileNames(path)
  t.ok(first.has('host49999.test'))
  t.ok(await hostsFileNames(path) === first, 'unchanged: the names parsed last time')
  appendFileSync(path, '127.0.0.2 added.test\n')
  const changed = await hostsFileNames(path)
  t.ok(changed !== first, 'changed: parsed again')
  t.ok(changed.has('added.test'), 'the new entry counts')
  t.ok(await hostsFileNames(path) === changed)
  t.equal((await hostsFileNames(join(t.testdir({}), 'none'))).size, 0, 'a file that cannot be read: no names')
})

t.test('an address with a zone ID gives its names nothing, as glibc reads it', async t => {
  const path = join(t.testdir({}), 'hosts')
  writeFileSync(path, 'fe80::1%lo zone.test\nfe80::1 plain.test\n127.0.0.1 Mixed.Test # comment.test\n')
  t.same([...await hostsFileNames(path)].sort(), ['mixed.test', 'plain.test'])
})
