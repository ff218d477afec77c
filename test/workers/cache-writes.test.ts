import t from 'tap'
import { Client } from 'undici'
import { numberingUpstream } from '../helpers/shared-cache-store.ts'
import { waitFor } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// With server.workers, each worker's memory cache is its own: a write one worker takes invalidates
// the URL on the others too, before its answer goes, so the client's next reads (on any
// connection, so any worker) never get an entry from before it.

/** `method` on `url`, on a connection of its own (the workers take them in turn): status, body and Cache-Status. */
async function once (url: string, method = 'GET'): Promise<{ status: number, body: string, cacheStatus: string }> {
  const client = new Client(new URL(url).origin)
  try {
    const res = await client.request({ path: new URL(url).pathname, method })
    return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
  } finally {
    await client.close()
  }
}

t.test('workers: a write invalidates the URL in every worker\'s memory cache before it is answered', async t => {
  const up = await numberingUpstream()
  t.teardown(() => up.close())
  const { url: base } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, '  - { name: r, match: { path: /r/* }, upstream: u, plugins: { cache: {} } }')
  const url = `${base}/r/1`
  const before = new Set<string>()
  const allHits = async () => {
    const got = [await once(url), await once(url), await once(url), await once(url)]
    for (const g of got) before.add(g.body)
    return got.every(g => g.cacheStatus.startsWith('Portcullis; hit')) ? true : undefined
  }
  t.ok(await waitFor(allHits, 10_000), 'both workers hold /r/1')
  const write = await once(url, 'POST')
  t.same([write.status, write.cacheStatus], [200, 'Portcullis; fwd=method'])
  const after = [await once(url), await once(url), await once(url), await once(url)]
  t.same(after.filter(a => before.has(a.body)).map(a => a.body), [], 'no read after the write gets an entry from before it')
  t.ok(after.every(a => a.status === 200), 'answered')
})
