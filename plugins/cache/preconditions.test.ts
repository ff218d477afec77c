import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'

// RFC 9110 13.2.2: on a hit of a stored 2xx, If-Match (strong comparison), else If-Unmodified-Since,
// is evaluated before If-None-Match and If-Modified-Since; one that fails is a 412 without a body.
const LAST_MODIFIED = 'Wed, 01 Jan 2020 00:00:00 GMT'
const BEFORE = 'Mon, 01 Jan 2001 00:00:00 GMT'
const AFTER = 'Fri, 01 Jan 2100 00:00:00 GMT'

t.test('If-Match and If-Unmodified-Since on a hit', async t => {
  const r = await rig(t, (req, res) => {
    if (req.headers['if-none-match'] === '"s"') { res.writeHead(304, { etag: '"s"', 'cache-control': 'max-age=60' }).end(); return }
    // /stale: stored stale (its Age past max-age), revalidated by the next request.
    res.writeHead(200, { etag: '"s"', 'last-modified': LAST_MODIFIED, 'cache-control': 'max-age=60', 'content-length': 4, ...req.url === '/stale' ? { age: '61' } : {} }).end('body')
  })
  t.match((await r.get('/k')).cacheStatus, /stored/)
  const cases: Array<[Record<string, string>, number, string]> = [
    [{ 'if-match': '"other"' }, 412, 'If-Match naming another tag'],
    [{ 'if-match': 'W/"s"' }, 412, 'a weak tag never matches strongly'],
    [{ 'if-match': '"s"' }, 200, 'If-Match naming the stored tag'],
    [{ 'if-match': '"a", "s"' }, 200, 'a list holding it'],
    [{ 'if-match': '*' }, 200, '*'],
    [{ 'if-unmodified-since': BEFORE }, 412, 'modified since'],
    [{ 'if-unmodified-since': AFTER }, 200, 'not modified since'],
    [{ 'if-unmodified-since': 'June 5 2026' }, 200, 'not an HTTP-date: ignored'],
    [{ 'if-match': '"s"', 'if-unmodified-since': BEFORE }, 200, 'If-Unmodified-Since is ignored beside If-Match'],
    [{ 'if-match': '"s"', 'if-none-match': '"s"' }, 304, 'If-None-Match after If-Match'],
    [{ 'if-match': '"other"', 'if-none-match': '"s"' }, 412, 'If-Match first']
  ]
  for (const [headers, status, what] of cases) {
    const a = await r.get('/k', headers)
    t.same([a.status, a.body === 'body'], [status, status === 200], `${what}: ${status}`)
    t.match(a.cacheStatus, /^Portcullis; hit/)
  }
  const head = await r.get('/k', { 'if-match': '"other"' }, 'HEAD')
  t.equal(head.status, 412, 'HEAD too')
  t.equal(r.seen.length, 1, 'all from the cache')
  t.match((await r.get('/stale')).cacheStatus, /stored/)
  const revalidated = await r.get('/stale', { 'if-match': '"other"' })
  t.same([revalidated.status, revalidated.body], [412, ''], 'a stale entry revalidated with a 304: the client\'s If-Match still counts')
  t.match(revalidated.cacheStatus, /fwd=stale; fwd-status=304/)
})
