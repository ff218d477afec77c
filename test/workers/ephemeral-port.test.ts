import t from 'tap'
import { namedUpstream } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

// server.listen.port 0 picks a free port once: node:cluster drops the listener it shares when its
// last worker exits, and workers asking for port 0 again would get another one.
t.test('workers: with port 0, workers restarted after all had exited listen on the port first bound', async t => {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const { cli, workers, url } = await startCluster(t, `  a: { targets: [ { url: "${a.url}" } ] }`, '  - { name: r, match: { path: /r }, upstream: a }')
  const all = (answers: string[]) => t.same(new Set(answers), new Set(['200 a']), `served on ${url}: ${answers.join(', ')}`)
  all(await fresh(`${url}/r`, 4))

  /** SIGKILLs `pids`; the pids of the workers that took their places, once they serve. */
  const kill = async (pids: number[]): Promise<number[]> => {
    const since = cli.lines.length
    const slots = await Promise.all(pids.map(pid => {
      const exited = cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === pid)
      process.kill(pid, 'SIGKILL')
      return exited.then(l => l?.worker)
    }))
    const serving = await Promise.all(slots.map(slot => cli.waitForLine(l => l.msg === 'worker serving' && l.worker === slot && cli.lines.indexOf(l) >= since, 60_000)))
    t.ok(serving.every(l => l?.url === url), `each restarted worker serves on ${url}: ${serving.map(l => String(l?.url)).join(', ')} (stderr: ${cli.stderr()})`)
    return serving.map(l => l?.workerPid as number)
  }

  const [first, second] = workers as [number, number]
  // One restarted while the other serves: it joins the listener the other holds.
  const [third] = await kill([first])
  all(await fresh(`${url}/r`, 4))
  // Both at once: the listener is gone; the new workers bind the same port again.
  const again = await kill([second, third as number])
  all(await fresh(`${url}/r`, 4))
  // And once more, one of those: it joins them.
  await kill([again[0] as number])
  all(await fresh(`${url}/r`, 4))
})
