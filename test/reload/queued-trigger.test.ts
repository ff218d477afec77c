import t from 'tap'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

const route = (name: string, path: string) => `  - { name: ${name}, match: { path: "${path}" }, upstream: a }`

// A file event under way, another queued behind it (the watcher's poll), then an explicit reload:
// it joins the queued attempt, which must not answer with a file event's shortcuts.
t.test('an admin or signal reload joining a queued file attempt builds from the file', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, route('api', '/api'))
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const { reloader } = gw

  for (const explicit of ['admin', 'signal'] as const) {
    // The active text: a file event finds nothing to do; an explicit reload rebuilds all the same.
    const [first, queued, asked] = [reloader.reload('file'), reloader.reload('file'), reloader.reload(explicit)]
    t.match(await first, { trigger: 'file', result: 'unchanged' })
    t.equal(await queued, await asked, 'one queued attempt, shared')
    t.match(await asked, { trigger: explicit, result: 'success' }, `${explicit}, active text: rebuilt`)

    // An invalid file: the first attempt rejects it; the queued one must too, not find it already reported.
    await cf.write(good.replace('upstream: a', 'upstream: nope'))
    const [bad, again, told] = [reloader.reload('file'), reloader.reload('file'), reloader.reload(explicit)]
    t.match(await bad, { trigger: 'file', result: 'invalid' })
    t.match(await told, { trigger: explicit, result: 'invalid', issues: [{ path: 'routes[0].upstream' }] }, `${explicit}, invalid file: rejected`)
    t.equal(await again, await told)
    await cf.write(good)
  }

  // A file event joining an explicit queued attempt changes nothing: it is the explicit one.
  const [, first, later] = [reloader.reload('file'), reloader.reload('admin'), reloader.reload('file')]
  t.equal(await later, await first)
  t.match(await first, { trigger: 'admin', result: 'success' })
})
