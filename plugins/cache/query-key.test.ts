import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'

// key.query.include and ignore leave parameters out of the key: one the upstream reads as a kept
// parameter (decoded, in another case, as an array, behind a `;`) would let an attacker store an
// answer for a query the next client does not send (cache poisoning).

/** The ids a lenient upstream reads: names decoded, in any case, spaces and `[...]` dropped, `&` and `;` both separators. */
const ids = (url: string): string => (url.split('?')[1] ?? '').split(/[&;]/).flatMap(pair => {
  const [name = '', value = ''] = pair.split('=')
  return decodeURIComponent(name.replace(/\+/g, ' ')).trim().toLowerCase().replace(/\[.*$/, '') === 'id' ? [value] : []
}).join(',')

const upstream = (url: string): string => `ids ${ids(url)}`

t.test('include: a parameter the key leaves out can never change the stored answer', async t => {
  const r = await rig(t, (req, res) => {
    const body = upstream(req.url as string)
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length }).end(body)
  }, '{ key: { query: { include: [id] } } }')
  const attacks: Array<[string, RegExp]> = [
    ['?id=1&%69d=666', /^Portcullis; fwd=uri-miss; fwd-status=200; stored/],
    ['?id=1&i%64=666', /^Portcullis; fwd=uri-miss; fwd-status=200; stored/],
    ['?id=1&ID=666', /^Portcullis; fwd=bypass; detail=ambiguous-query$/],
    ['?id=1&%49D=666', /^Portcullis; fwd=bypass; detail=ambiguous-query$/],
    ['?x=1;id=666&id=1', /^Portcullis; fwd=bypass; detail=ambiguous-query$/],
    ['?id=1&id[]=666', /^Portcullis; fwd=bypass; detail=ambiguous-query$/],
    ['?id=1&+id=666', /^Portcullis; fwd=bypass; detail=ambiguous-query$/]
  ]
  for (const [i, [query, status]] of attacks.entries()) {
    const attack = await r.get(`/p${i}${query}`)
    t.match(attack.body, /666/, `${query}: the upstream reads the second id`)
    t.match(attack.cacheStatus, status, `${query}: ${attack.cacheStatus}`)
    const victim = await r.get(`/p${i}?id=1`)
    t.equal(victim.body, 'ids 1', `${query}: the next client's own answer`)
  }
  // Kept spelled as sent: each spelling its own entry.
  t.match((await r.get('/p0?id=1&%69d=666')).cacheStatus, /^Portcullis; hit/)
  t.match((await r.get('/p0?id=1&other=2')).cacheStatus, /^Portcullis; hit/, 'a parameter no upstream reads as id is still left out')
})

t.test('ignore: names compared decoded; a `;` in a parameter left out bypasses', async t => {
  const r = await rig(t, (req, res) => {
    const body = upstream(req.url as string)
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length }).end(body)
  }, '{ key: { query: { ignore: [utm_source] } } }')
  t.match((await r.get('/q?utm_source=a')).cacheStatus, /stored/)
  t.match((await r.get('/q?%75tm_source=b')).cacheStatus, /^Portcullis; hit/, 'the upstream reads it as utm_source, which the key leaves out')
  const smuggled = await r.get('/q?utm_source=a;id=666')
  t.same([smuggled.body, smuggled.cacheStatus], ['ids 666', 'Portcullis; fwd=bypass; detail=ambiguous-query'])
  t.equal((await r.get('/q')).body, 'ids ', 'not stored as /q\'s answer')
  t.match((await r.get('/q?UTM_SOURCE=c')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'another case is kept: its own entry')
})

t.test('include: a name left out that shares a form with an included one bypasses, both ways', async t => {
  // An upstream echoing the query as sent: any parameter it was given shows in the answer.
  const r = await rig(t, (req, res) => {
    const body = `query ${req.url as string}`
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': Buffer.byteLength(body) }).end(body)
  }, '{ key: { query: { include: ["user.id", "ids[]"] } } }')
  const attacks: Array<[string, string]> = [
    // PHP reads `user.id` as `user_id`: the second wins.
    ['?user.id=1&user_id=666', '?user.id=1'],
    // PHP, Rack and qs read `ids[0]` as part of `ids`, as they read `ids[]`.
    ['?ids[]=1&ids[0]=666', '?ids[]=1'],
    // PHP cuts a name at a NUL: `user.id` again.
    ['?user.id=2&user.id%00x=666', '?user.id=2']
  ]
  for (const [i, [query, victimQuery]] of attacks.entries()) {
    const attack = await r.get(`/c${i}${query}`)
    t.match(attack.body, /666/, `${query}: the upstream was given it`)
    t.equal(attack.cacheStatus, 'Portcullis; fwd=bypass; detail=ambiguous-query', `${query}: not cached`)
    const victim = await r.get(`/c${i}${victimQuery}`)
    t.equal(victim.body, `query /c${i}${victimQuery}`, `${query}: the next client's own answer`)
    t.match(victim.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
  }
  t.match((await r.get('/c0?user.id=1&other=2')).cacheStatus, /^Portcullis; hit/, 'a name no parser reads as an included one is still left out')
})
