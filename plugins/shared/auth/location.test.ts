import t from 'tap'
import type { GatewayRequest } from '../../../src/index.ts'
import { basicChallenge, bearerChallenge, keyChallenge, quoted } from './challenge.ts'
import { MISSING, fail } from './failure.ts'
import { compileLocation, compileLocations } from './location.ts'

const req = (headers: Record<string, string>, query = '') => ({ headers, query }) as unknown as GatewayRequest

t.test('header with a scheme: case-insensitive scheme, other schemes and the scheme alone count as absent, the scheme without white space and a credential as malformed', async t => {
  const bearer = compileLocation({ header: 'Authorization', scheme: 'Bearer' })
  t.equal(bearer.read(req({ authorization: 'Bearer abc.def' })), 'abc.def')
  t.equal(bearer.read(req({ authorization: 'bearer   abc ' })), 'abc')
  t.equal(bearer.read(req({ authorization: 'Basic YTpi' })), undefined)
  t.equal(bearer.read(req({ authorization: 'Bearer\tabc' })), 'abc', 'a tab after the scheme: the token, to verify (not no token)')
  t.equal(bearer.read(req({ authorization: 'BEARER \t abc' })), 'abc')
  t.equal(bearer.read(req({ authorization: 'Bearer \u00a0abc\u00a0' })), '\u00a0abc\u00a0', 'only SP and HTAB trimmed: the rest is the token judged')
  for (const value of ['Bearerabc', 'Bearer\u00a0abc', 'Bearer,abc', 'Bearer;abc', 'Bearer\u00a0', 'Bearer,']) {
    t.equal(bearer.read(req({ authorization: value })), '', `present but malformed ('', to refuse), not no token: ${JSON.stringify(value)}`)
  }
  for (const value of ['Bearer', 'bearer', 'BEARER', 'Bearer ', 'Bearer\t', 'Bearer \t ']) {
    t.equal(bearer.read(req({ authorization: value })), undefined, `the scheme alone carries nothing: no token (\`Bearer \${token ?? ''}\`): ${JSON.stringify(value)}`)
  }
  t.equal(bearer.read(req({})), undefined)
  const key = compileLocation({ header: 'X-API-Key' })
  t.equal(key.read(req({ 'x-api-key': 'k1' })), 'k1')
  t.equal(key.read(req({ 'x-api-key': '' })), undefined)
  const r = req({ 'x-api-key': 'k1', other: 'o' })
  key.remove(r)
  t.same(r.headers, { 'x-api-key': undefined, other: 'o' })
})

t.test('white space around a credential: SP and HTAB trimmed, inner runs kept as sent', async t => {
  const bearer = compileLocation({ header: 'Authorization', scheme: 'Bearer' })
  const inner = ' '.repeat(64_000)
  t.equal(bearer.read(req({ authorization: `Bearer \t a${inner}x \t ` })), `a${inner}x`)
  t.equal(bearer.read(req({ authorization: `Bearer ${inner}` })), undefined, 'the scheme and white space alone: no credential')
  t.equal(bearer.read(req({ authorization: 'Bearer \u00a0t\u00a0' })), '\u00a0t\u00a0', 'U+00A0 is no white space here')
})

t.test('a header with a scheme is removed only when it holds that scheme: another plugin may read it', async t => {
  const bearer = compileLocation({ header: 'authorization', scheme: 'Bearer' })
  const basic = req({ authorization: 'Basic YTpi' })
  bearer.remove(basic)
  t.same(basic.headers, { authorization: 'Basic YTpi' }, 'basic-auth\'s to keep or hide')
  const token = req({ authorization: 'bearer abc' })
  bearer.remove(token)
  t.same(token.headers, { authorization: undefined })
  const tab = req({ authorization: 'Bearer\tabc' })
  bearer.remove(tab)
  t.same(tab.headers, { authorization: undefined }, 'after a tab too')
  const malformed = req({ authorization: 'Bearer\u00a0abc' })
  bearer.remove(malformed)
  t.same(malformed.headers, { authorization: undefined }, 'a malformed one too')
})

t.test('scrub: the header under another `_` spelling goes, the one read stays; nothing for a cookie or query parameter', async t => {
  const key = compileLocation({ header: 'X-Api-Key' })
  const r = req({ 'x-api-key': 'alice', x_api_key: 'bob', 'x_api-key': 'b', 'x-api_key': 'c', 'x-api-keys': 'd', xapikey: 'e' })
  key.scrub(r)
  t.same(r.headers, { 'x-api-key': 'alice', x_api_key: undefined, 'x_api-key': undefined, 'x-api_key': undefined, 'x-api-keys': 'd', xapikey: 'e' })
  const underscored = compileLocation({ header: 'x_token' })
  const u = req({ x_token: 't', 'x-token': 'forged' })
  underscored.scrub(u)
  t.same(u.headers, { x_token: 't', 'x-token': undefined }, 'a name written with `_`: the `-` spelling goes')
  const bearer = compileLocation({ header: 'authorization', scheme: 'Bearer' })
  const b = req({ authorization: 'Bearer t' })
  bearer.scrub(b)
  t.same(b.headers, { authorization: 'Bearer t' }, 'no other spelling')
  for (const location of [{ cookie: 'x-token' }, { query: 'x-token' }]) {
    const c = req({ cookie: 'x-token=a', x_token: 'b' }, '?x-token=c')
    compileLocation(location).scrub(c)
    t.same([c.headers, c.query], [{ cookie: 'x-token=a', x_token: 'b' }, '?x-token=c'])
  }
})

t.test('scrub compares a normalized name, not a list of the 2^dashes spellings: a header of many dashes costs as little as any', async t => {
  const long = Array.from({ length: 17 }, (_, i) => `p${i}`)
  const location = compileLocation({ header: long.join('-') })
  const spelt = long.reduce((name, part, i) => `${name}${i % 3 === 0 ? '-' : '_'}${part}`)
  const headers: Record<string, string | undefined> = { [long.join('-')]: 'k', [spelt]: 'forged', 'x-other': 'o' }
  let reads = 0
  const counted = new Proxy(headers, { get: (target, name) => { reads++; return Reflect.get(target, name) } })
  location.scrub({ headers: counted, query: '' } as unknown as GatewayRequest)
  t.same(headers, { [long.join('-')]: 'k', [spelt]: undefined, 'x-other': 'o' }, 'the `_` spelling removed, the name read kept')
  t.ok(reads < 10, `a few header reads a request, not one a spelling (${reads})`)
  const several = compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { header: 'x_token' }, { header: 'X-Api-Key' }, { query: 'x-q' }], { redactHeaders: () => {} })
  const r = req({ authorization: 'Bearer t', x_token: 't', 'x-token': 'f', 'x-api-key': 'k', x_api_key: 'f', 'x_api-key': 'f', x_q: 'q', 'x-api-keys': 'd' })
  several.scrub(r)
  t.same(r.headers, { authorization: 'Bearer t', x_token: 't', 'x-token': undefined, 'x-api-key': 'k', x_api_key: undefined, 'x_api-key': undefined, x_q: 'q', 'x-api-keys': 'd' },
    'several locations: each header\'s other spellings, in one pass')
})

t.test('cookie and query parameter', async t => {
  const cookie = compileLocation({ cookie: 'session' })
  t.equal(cookie.read(req({ cookie: 'a=1; session=tok.en; b=2' })), 'tok.en')
  t.equal(cookie.read(req({ cookie: 'mysession=x; session_id=y' })), undefined)
  t.equal(cookie.read(req({ cookie: 'session= ; other=1' })), '', 'an empty cookie is present: \'\', to refuse')
  t.equal(cookie.read(req({ cookie: 'sessionX; other=1' })), undefined, 'a pair without = is named by all of it')
  t.equal(cookie.read(req({ cookie: 'other=1; session' })), '', 'so a bare name is an empty cookie (PHP reads it so)')
  t.equal(cookie.read(req({ cookie: 'a=1; session="tok.en"; b=2' })), 'tok.en', 'a quoted value (RFC 6265): one pair of quotes removed')
  t.equal(cookie.read(req({ cookie: 'session=""' })), '', 'quotes around nothing: an empty cookie')
  t.equal(cookie.read(req({ cookie: 'session="' })), '"', 'a lone quote is the value itself')
  t.equal(cookie.read(req({ cookie: 'sess%69on=tok.en' })), 'tok.en', 'a percent-encoded name is the name (PHP decodes names)')
  t.equal(cookie.read(req({ cookie: 'sess%zzon=tok.en; %=1' })), undefined, 'one that does not decode is another')
  t.equal(cookie.read(req({ cookie: ['a=1', 'session=tok.en'] } as unknown as Record<string, string>)), 'tok.en', 'a list (set by a plugin) read as one header')
  const read = (header: string | string[]) => {
    const r = req({ cookie: header } as unknown as Record<string, string>)
    return [cookie.read(r), r.headers.cookie]
  }
  t.same(read('a=1; session=x; b=2'), ['x', 'a=1; session=x; b=2'], 'once: the header as sent')
  for (const [twice, value, left] of [
    ['session=a; b=1;session=b', 'a', 'session=a; b=1'],
    ['session=a; session=a', 'a', 'session=a'],
    ['session=a; session=; session', 'a', 'session=a'],
    ['session=a; sess%69on=b', 'a', 'session=a'],
    ['sess%69on=b; session=a', 'b', 'sess%69on=b'],
    ['session=; session=b', '', 'session='],
    ['session; session=b', '', 'session']
  ] as const) {
    t.same(read(twice), [value, left], `sent twice: the first pair (an empty one is malformed), the others removed: ${twice}`)
  }
  t.same(read(['a=1', 'session=a', 'session=b']), ['a', 'a=1; session=a'], 'a list too')
  const php = compileLocation({ cookie: 'access_token' })
  const phpRead = (header: string) => {
    const r = req({ cookie: header })
    return [php.read(r), r.headers.cookie]
  }
  t.same(phpRead('access_token=a; access.token=b; access+token=c; access[token=d; %20access%2Etoken=e; x=1'), ['a', 'access_token=a; x=1'],
    'names PHP reads as it are copies: removed')
  t.same(phpRead('access.token=b; access_token=a'), ['b', 'access.token=b'], 'the first decides, whatever its spelling')
  t.same(phpRead('access.tokens=b; access_token[=c; access[token]=d; access_token]=e; [access_token]=f'), [undefined, 'access.tokens=b; access_token[=c; access[token]=d; access_token]=e; [access_token]=f'],
    'others are not (Rack\'s and qs\'s readings of brackets are of query names only)')
  for (const [header, value, left] of [
    ['access_token[]=b', '', 'access_token[]=b'],
    ['access.token[x]=b; x=1', '', 'access.token[x]=b; x=1'],
    ['access_token[]x=b', '', 'access_token[]x=b'],
    ['access_token=a; access_token[]=b; x=1', 'a', 'access_token=a; x=1']
  ] as const) {
    t.same(phpRead(header), [value, left], `an array (PHP's and Rack's \`access_token[]\`, \`[x]\`): malformed first, a copy after: ${header}`)
  }
  const cookies = (header: string | string[]) => {
    const r = req({ cookie: header } as unknown as Record<string, string>)
    cookie.remove(r)
    return r.headers.cookie
  }
  t.equal(cookies('a=1; session=tok.en;b=2'), 'a=1; b=2', 'removed, the other cookies kept in order')
  t.equal(cookies('session=x; a=1; sess%69on=y; session'), 'a=1', 'every pair of its name')
  t.equal(cookies('session=x'), undefined, 'no Cookie header when none is left')
  t.equal(cookies(' session=x ;; '), undefined)
  t.equal(cookies(['a=1', 'session=x']), 'a=1', 'a list too')
  t.equal(cookies('a=1;;b=2 ; sessionX=3'), 'a=1;;b=2 ; sessionX=3', 'a header without it as sent')
  t.equal(cookies('a=1, session=x; b=2,c=3'), 'a=1; b=2,c=3', 'behind a `,` (Rack 2 and the old `cookie` module split on it): removed, the rest kept with its separators')
  t.equal(cookies('session=x, a=1, sess%69on=y ,b=2'), 'a=1,b=2')
  t.equal(cookies('session=x,session=y'), undefined)
  t.equal(cookies('a=1, b=2; sessionX=3,c'), 'a=1, b=2; sessionX=3,c', 'without it as sent')
  t.equal(cookies('a=1; session[]=x; session[k]=y,b=2'), 'a=1; b=2', 'its array form too')
  t.equal(cookies('session=x; consent=ads,session; b=2'), 'consent=ads,session; b=2', 'a bare name behind a `,` is part of the value before it: kept with it')
  t.equal(cookies('a=1; session=x,y, b=2'), 'a=1; b=2', 'and goes with a pair of its name (a piece of the credential)')
  t.same(read('consent=ads,session; theme=dark'), [undefined, 'consent=ads,session; theme=dark'], 'so it is no copy: no cookie')
  t.same(read('session=x; consent=ads,session'), ['x', 'session=x; consent=ads,session'], 'nor a second one')
  t.same(read('session,a=1'), [undefined, 'session,a=1'], 'nor one in front of a pair')
  const spaced = compileLocation({ query: 'access token' })
  const plus = req({}, '?access+token=x&a=1')
  spaced.remove(plus)
  t.equal(plus.query, '?a=1', 'a + in a name is a space')
  const query = compileLocation({ query: 'access_token' })
  t.equal(query.read(req({}, '?a=1&access_token=t%2B1&b')), 't+1')
  t.equal(query.read(req({}, '?access_token=')), '', 'an empty parameter is present: \'\', to refuse')
  t.equal(query.read(req({}, '?a&access_token')), '', 'without = too')
  t.equal(query.read(req({}, '?access_tokens=x&b=access_token')), undefined)
  for (const twice of ['?access_token=a&access_token=b', '?access_token=&access_token=b', '?access_token=a&access%5Ftoken=a', '?access_token&access_token=b',
    '?access_token=a&access.token=b', '?access_token=a&access+token=b', '?access_token=a&access[token=b', '?access_token=a&%20access%2Etoken=b', '?access_token=a&access_token%00x=b',
    '?access.token=a;access_token=b']) {
    t.equal(query.read(req({}, twice)), '', `sent twice, even the same or empty: '' (malformed): ${twice}`)
  }
  t.equal(query.read(req({}, '?access.token=t')), 't', 'once under a name PHP reads as it: the credential')
  t.equal(query.read(req({}, '?access_token=t&access.tokens=u&access[token]=v&access_token[=w&[access_token[=w&x[access_token]=y')), 't', 'other names are not copies')
  for (const array of ['?access_token[]=t', '?access_token[x]=t', '?access.token[]=t', '?access_token%5B%5D=t', '?access_token=t&access_token[]=u', '?access_token[]=t&x=1;access_token=t']) {
    t.equal(query.read(req({}, array)), '', `its array form (PHP's and Rack's \`access_token[]\`): present, malformed: ${array}`)
  }
  // Rack 2 and qs (Express) read these as access_token: a copy the gateway never judged went upstream.
  for (const bracketed of ['?[access_token]=t', '?%5Baccess_token%5D=t', '?access_token]=t', '?]access_token=t', '?[access_token=t', '?[[access.token]]=t', '?[access_token][]=t',
    '?access_token][x]=t', '?access_token[[=t', '?access_token=t&%5Baccess_token%5D=u', '?access_token=t&x=1;access_token]=u']) {
    t.equal(query.read(req({}, bracketed)), '', `in brackets as Rack 2 or qs reads it: present, malformed: ${bracketed}`)
  }
  t.equal(compileLocation({ query: 'access.token' }).read(req({}, '?access.token=a&access_token=b')), '', 'both names mangled: `access.token` is PHP\'s `access_token`')
  const r = req({}, '?a=1&access_token=x&access%5Ftoken=y&b=2&access_tokens=z&access.token=v&access+token=w')
  query.remove(r)
  t.equal(r.query, '?a=1&b=2&access_tokens=z', 'every spelling of the parameter removed, others kept in order')
  const only = req({}, '?access_token=x')
  query.remove(only)
  t.equal(only.query, '')
  const malformed = req({}, '?%zz=1&access_token=x&a+b=2')
  query.remove(malformed)
  t.equal(malformed.query, '?%zz=1&a+b=2', 'a name that does not decode is kept')
  for (const [q, left] of [
    ['?x=1;access_token=f', '?x=1'],
    ['?a=1&x=1;access_token=f;y=2&b=2', '?a=1&x=1;y=2&b=2'],
    ['?access_token=f;x=1&access.token=g', '?x=1'],
    ['?access_token=f;access_token=g&a=1', '?a=1'],
    ['?access_token[]=f&a=1&access_token[x]=g;b=2', '?a=1&b=2'],
    ['?[access_token]=f&a=1&access_token]=g;]access_token=h&%5Baccess_token%5D=i&access_token[=j', '?a=1&access_token[=j'],
    ['?a=1&access_token=f;access%5Ftoken=g', '?a=1']
  ] as const) {
    const split = req({}, q)
    query.remove(split)
    t.equal(split.query, left, `behind a \`;\` (Rack 2, Perl's CGI, old Go split on it) or as an array: removed, the rest kept with its separators: ${q}`)
  }
  t.equal(query.read(req({}, '?next=/a;access_token&access_token=t')), 't', 'a bare name behind a `;` is part of the value before it: no copy')
  t.equal(query.read(req({}, '?access_token=t;x')), '', 'a value read otherwise behind a `;` (`t`) still malformed')
  for (const [q, left] of [['?next=/a;access_token&access_token=t', '?next=/a;access_token'], ['?a=1&access_token=t;x;b=2', '?a=1&b=2']] as const) {
    const bare = req({}, q)
    query.remove(bare)
    t.equal(bare.query, left, `a bare name behind a \`;\` goes or stays with the value before it: ${q}`)
  }
  for (const q of ['?;access_token=x', '?&access_token=x', '?access_token=x;', '?;access_token=x&;']) {
    const separators = req({}, q)
    query.remove(separators)
    t.equal(separators.query, '', `only separators left: no stray \`?\`: "${q}"`)
  }
  for (const q of ['', '?', '?a=1&&b', '?a=%41', '?a=1;b=2&;c']) {
    const untouched = req({}, q)
    query.remove(untouched)
    t.equal(untouched.query, q, `a query without the parameter is left as sent: "${q}"`)
  }
})

t.test('a query parameter name in another case (ASP.NET reads it as the name): never the credential, malformed beside it, removed by scrub', async t => {
  const query = compileLocation({ query: 'access_token' })
  for (const lone of ['?ACCESS_TOKEN=t', '?Access_Token=t&x=1', '?x=1;ACCESS_TOKEN=t', '?Access.Token=t', '?ACCESS_TOKEN[]=t']) {
    t.equal(query.read(req({}, lone)), undefined, `alone, no credential: ${lone}`)
  }
  t.equal(query.read(req({}, '?access.token=t')), 't', 'PHP\'s reading still the name: alone, the credential')
  for (const twice of ['?access_token=a&ACCESS_TOKEN=b', '?Access_Token=a&access_token=a', '?access_token=a&Access.Token=b', '?access_token=a&x=1;ACCESS_TOKEN=b', '?access_token=a&ACCESS_TOKEN[]=b', '?ACCESS%5FTOKEN=b&access_token=a']) {
    t.equal(query.read(req({}, twice)), '', `beside the name: '' (malformed), as a copy of it: ${twice}`)
  }
  const scrubbed = req({}, '?a=1&ACCESS_TOKEN=x&access_token=k&Access_Token=y&access.TOKEN=z&access_tokens=w;ACCESS_TOKEN=v')
  query.scrub(scrubbed)
  t.equal(scrubbed.query, '?a=1&access_token=k&access_tokens=w', 'scrub: every other case goes, behind a `;` too; the name stays')
  const only = req({}, '?ACCESS_TOKEN=x')
  query.scrub(only)
  t.equal(only.query, '', 'no stray `?`')
  const removed = req({}, '?a=1&ACCESS_TOKEN=x&access_token=k&access.token=z')
  query.remove(removed)
  t.equal(removed.query, '?a=1', 'remove: the name and its copies')
  const configured = compileLocation({ query: 'API_Key' })
  t.equal(configured.read(req({}, '?api_key=k')), undefined, 'the configured name as written')
  t.equal(configured.read(req({}, '?API_Key=k')), 'k')
  const several = compileLocations([{ header: 'x_token' }, { cookie: 'session' }, { query: 'access_token' }, { query: 'api_key' }], { redactHeaders: () => {} })
  const r = req({ x_token: 't', 'x-token': 'f' }, '?API_KEY=a&Access_Token=b&x=1')
  several.scrub(r)
  t.same([r.headers, r.query], [{ x_token: 't', 'x-token': undefined }, '?x=1'], 'several locations: header spellings and each query parameter\'s copies')
})

t.test('cookie names are case-sensitive (RFC 6265; Spring Session\'s SESSION beside an app\'s session): another case is another cookie, read, kept and removed by the exact name', async t => {
  const cookie = compileLocation({ cookie: 'session' })
  const read = (header: string) => {
    const c = req({ cookie: header })
    return [cookie.read(c), c.headers.cookie]
  }
  t.same(read('SESSION=YzQ2; a=1'), [undefined, 'SESSION=YzQ2; a=1'], 'alone: no credential, kept')
  t.same(read('SESSION=YzQ2; session=good'), ['good', 'SESSION=YzQ2; session=good'], 'before the cookie: the cookie decides, the other kept')
  t.same(read('session=good; SESSION=YzQ2; Session=x'), ['good', 'session=good; SESSION=YzQ2; Session=x'], 'after it: no copy, kept')
  t.same(read('a=1, SESSION=YzQ2; session=good'), ['good', 'a=1, SESSION=YzQ2; session=good'], 'behind a `,`: no copy')
  t.same(read('session=good; sess.ion=x'), ['good', 'session=good; sess.ion=x'], 'PHP\'s mangling as before: `sess.ion` is no `session`')
  const php = compileLocation({ cookie: 'access_token' })
  const c = req({ cookie: 'access_token=good; access.token=f; ACCESS_TOKEN=S' })
  t.equal(php.read(c), 'good')
  t.equal(c.headers.cookie, 'access_token=good; ACCESS_TOKEN=S', 'PHP\'s `access.token` a copy removed, another case kept')
  const removed = req({ cookie: 'a=1; SESSION=x; session=y, b=2; Session=z' })
  cookie.remove(removed)
  t.equal(removed.headers.cookie, 'a=1; SESSION=x; b=2; Session=z', 'remove: the exact name only')
  const scrubbed = req({ cookie: 'SESSION=x' })
  compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { cookie: 'session' }], { redactHeaders: () => {} }).scrub(scrubbed)
  t.equal(scrubbed.headers.cookie, 'SESSION=x', 'nothing to scrub')
})

t.test('a credential header may not be one the gateway sets for the upstream', async t => {
  for (const header of ['x-consumer-key', 'X-Consumer-Id', 'x_consumer_groups', 'x-anonymous-consumer']) {
    t.throws(() => compileLocation({ header }), /sets for the upstream/, header)
  }
  t.doesNotThrow(() => compileLocation({ header: 'x-consumers' }))
})

t.test('several locations: the first holding a credential wins; header names are redacted from logs', async t => {
  const redacted: string[] = []
  const any = compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { query: 't' }, { header: 'X-Team-Key' }], { redactHeaders: (...names) => redacted.push(...names) })
  t.same(redacted, ['authorization', 'X-Team-Key'])
  t.equal(any.read(req({ authorization: 'Bearer h' }, '?t=q')), 'h')
  t.equal(any.read(req({ authorization: 'Basic x' }, '?t=q')), 'q')
  t.equal(any.read(req({ authorization: 'Basic x' }, '?u=q')), undefined)
  t.equal(any.read(req({ 'x-team-key': 'k' }, '?t=')), '', 'an empty or twice-sent one decides, not a later location')
  t.equal(any.read(req({ 'x-team-key': 'k' }, '?t=a&t=b')), '')
  t.equal(any.read(req({ authorization: 'Basic x', 'x-team-key': '' }, '?t=q')), 'q', 'an empty header is absent')
  t.equal(any.read(req({ authorization: 'Bearer', 'x-team-key': 'k' })), 'k', 'the scheme alone is absent')
  t.equal(any.read(req({ authorization: 'Bearer,', 'x-team-key': 'k' })), '', 'the scheme and anything but white space is malformed, not absent')
  const r = req({ authorization: 'Bearer h', other: 'o' }, '?a=1&t=q')
  any.remove(r)
  t.same([r.headers, r.query], [{ authorization: undefined, other: 'o' }, '?a=1'], 'removed from every location')
  const scrubbed = req({ 'x-team-key': 'k', x_team_key: 'forged' })
  any.scrub(scrubbed)
  t.same(scrubbed.headers, { 'x-team-key': 'k', x_team_key: undefined }, 'scrubs every location')
})

t.test('several locations: what the others hold is removed once one decides, the one that decided kept', async t => {
  const any = compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { query: 'access_token' }, { cookie: 'session' }, { header: 'x-token' }], { redactHeaders: () => {} })
  const read = (headers: Record<string, string>, query = '') => {
    const r = req(headers, query)
    return [any.read(r), r.headers, r.query]
  }
  t.same(read({ authorization: 'Bearer good', cookie: 'a=1; session=forged; b=2', 'x-token': 'forged' }, '?a=1&access_token=forged&b=2'),
    ['good', { authorization: 'Bearer good', cookie: 'a=1; b=2', 'x-token': undefined }, '?a=1&b=2'])
  t.same(read({ authorization: 'Basic YTpi', cookie: 'session=good' }, '?access_token=forged'),
    ['forged', { authorization: 'Basic YTpi', cookie: undefined }, '?access_token=forged'], 'a later location decides: an earlier one holding nothing is left as sent')
  t.same(read({ cookie: 'session=good', 'x-token': 'forged' }), ['good', { cookie: 'session=good', 'x-token': undefined }, ''])
  t.same(read({ 'x-token': 'good', cookie: 'a=1' }, '?b=2'), ['good', { 'x-token': 'good', cookie: 'a=1' }, '?b=2'], 'nothing elsewhere: the request as sent')
  t.same(read({ authorization: 'Bearer good', cookie: 'a=1, session=forged; b=2' }, '?x=1;access_token=forged&access_token[]=forged'),
    ['good', { authorization: 'Bearer good', cookie: 'a=1; b=2' }, '?x=1'], 'copies behind `,` and `;`, and arrays, removed too')
  t.same(read({ authorization: 'Bearer', 'x-token': 'good' }), ['good', { authorization: undefined, 'x-token': 'good' }, ''], 'the scheme alone: no token, removed')
})

t.test('several locations: a Sec-WebSocket-Protocol location is left as sent when another decides (a subprotocol offered)', async t => {
  const any = compileLocations([{ header: 'authorization', scheme: 'Bearer' }, { header: 'Sec-WebSocket-Protocol' }, { cookie: 'session' }], { redactHeaders: () => {} })
  const r = req({ authorization: 'Bearer good', 'sec-websocket-protocol': 'graphql-ws', cookie: 'session=forged' })
  t.equal(any.read(r), 'good')
  t.same(r.headers, { authorization: 'Bearer good', 'sec-websocket-protocol': 'graphql-ws', cookie: undefined })
  const ws = req({ 'sec-websocket-protocol': 'good', cookie: 'session=forged' })
  t.equal(any.read(ws), 'good', 'when it decides, the others go')
  t.same(ws.headers, { 'sec-websocket-protocol': 'good', cookie: undefined })
})

t.test('challenges: quoted strings escaped; no error code without a token (RFC 6750 3.1)', async t => {
  t.equal(quoted('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"')
  const challenge = bearerChallenge('my "realm"')
  t.equal(challenge(undefined), 'Bearer realm="my \\"realm\\""')
  t.equal(challenge(fail(401, 'expired', 'invalid_token', 'the token has expired')),
    'Bearer realm="my \\"realm\\"", error="invalid_token", error_description="the token has expired"')
  t.equal(challenge(fail(403, 'insufficient_scope', 'insufficient_scope', 'needs more', 'a b')),
    'Bearer realm="my \\"realm\\"", error="insufficient_scope", error_description="needs more", scope="a b"')
  t.equal(challenge(MISSING), 'Bearer realm="my \\"realm\\""', 'no token: no error code')
  t.equal(challenge(fail(503, 'unavailable', 'unavailable', 'the key store is unreachable')), 'Bearer realm="my \\"realm\\""', 'the token was not judged')
  t.equal(basicChallenge('a "b"')(undefined), 'Basic realm="a \\"b\\"", charset="UTF-8"')
  t.equal(keyChallenge('a "b"')(MISSING), 'Key realm="a \\"b\\""')
})

t.test('challenges hold only what a header value can (Node refuses one past Latin-1: a 500), and error_description and scope what RFC 6750 3 allows: the rest as ?', async t => {
  t.equal(quoted('r\u00e9alm \u2603 "x"\ty'), '"r?alm ? \\"x\\"\ty"', 'one ? a character, beyond printable ASCII or tab')
  const challenge = bearerChallenge('portcullis')
  t.equal(challenge(fail(401, 'claim_mismatch', 'invalid_token', 'the token\'s \u7d44\u7e54 "q\\b" claim \ud83d\ude00\t\ud800')),
    'Bearer realm="portcullis", error="invalid_token", error_description="the token\'s ?? ?q?b? claim ???"', 'no " or \\, no tab, no lone surrogate either')
  t.equal(challenge(fail(403, 'insufficient_scope', 'insufficient_scope', 'needs more', 'read \u8aad')),
    'Bearer realm="portcullis", error="insufficient_scope", error_description="needs more", scope="read ?"')
  t.equal(basicChallenge('caf\u00e9')(undefined), 'Basic realm="caf?", charset="UTF-8"')
  t.equal(keyChallenge('\u2603')(MISSING), 'Key realm="?"')
})

t.test('names with bad escapes: a query parameter or cookie is removed exactly as it is read (one decoding for both, which never throws)', async t => {
  const query = compileLocation({ query: 'access_token' })
  for (const [name, read, removed] of [
    ['access_token%00%FF', 'x', true], ['access_token%00%', 'x', true], ['access_token%00%zz', 'x', true], ['access+token', 'x', true],
    ['access%5Ftoken', 'x', true], ['%20access.token%00%E0%A4%A', 'x', true], ['access_token[%FF]', '', true],
    // Another case: a copy, no credential alone, removed all the same.
    ['ACCESS_TOKEN%00%FF', undefined, true], ['Access+Token%00%', undefined, true],
    ['access_token%FF', undefined, false], ['access_token%', undefined, false], ['%zzaccess_token', undefined, false], ['access_token%2', undefined, false]
  ] as const) {
    const r = req({}, `?a=1&${name}=x&b=2`)
    t.equal(query.read(r), read, `read: ${name}`)
    query.remove(r)
    t.equal(r.query, removed ? '?a=1&b=2' : `?a=1&${name}=x&b=2`, `removed ${removed ? 'too' : 'neither'}: ${name}`)
  }
  const cookie = compileLocation({ cookie: 'session' })
  const forged = req({ cookie: 'session%00%FF=forged; session=good; a=1' })
  t.equal(cookie.read(forged), 'forged', 'a cookie PHP reads as `session` (cut at the NUL) is that cookie, first as sent: judged, not passed over')
  cookie.remove(forged)
  t.equal(forged.headers.cookie, 'a=1')
  t.equal(cookie.read(req({ cookie: 'session%=x' })), undefined, 'a lone % is no escape: another name')
})

// A query is parsed only when it may hold the name (key-auth's `query:` cost some 30 times the
// CPU of a plain request on 7,000 empty pairs): what may must still be read, scrubbed and removed.
t.test('a query parameter in every spelling a `%`, a `+` or a character past ASCII may make of its name: read, scrubbed and removed, amid many pairs', async t => {
  const query = compileLocation({ query: 'api_key' })
  const filler = 'a&'.repeat(2_000)
  for (const [spelling, read, copy] of [
    ['api_key', 'k', false], ['%61pi_key', 'k', false], ['api%5Fkey', 'k', false], ['%61%70%69%5f%6b%65%79', 'k', false], ['api+key', 'k', false],
    ['api.key', 'k', false], ['api[key', 'k', false], ['+api_key', 'k', false], ['api%20key', 'k', false], ['api_key%00x', 'k', false],
    ['[api_key]', '', false], ['api_key[]', '', false], ['API_KEY', undefined, true], ['Api.Key', undefined, true], ['%41PI_KEY', undefined, true],
    // U+212A KELVIN SIGN, in lower case `k`: as its UTF-8 bytes (Node reads each as a character), encoded, and in a plugin's query.
    ['api_\u00e2\u0084\u00aaey', undefined, true], ['api_%E2%84%AAey', undefined, true], ['api_\u212aey', undefined, true]
  ] as const) {
    for (const q of [`?${filler}${spelling}=k&b=2`, `?%7A=1&${filler}${spelling}=k&b=2`]) {
      const lone = req({}, q)
      t.equal(query.read(lone), read, `read: ${spelling}${q.startsWith('?%') ? ' (a % elsewhere)' : ''}`)
      query.scrub(lone)
      t.equal(lone.query.endsWith(`${spelling}=k&b=2`), !copy, `scrubbed only as another case: ${spelling}`)
      const beside = req({}, `${q}&api_key=k`)
      t.equal(query.read(beside), '', `beside the name, malformed: ${spelling}`)
      query.remove(beside)
      t.equal(beside.query, q.replace(`${spelling}=k&`, ''), `removed: ${spelling}`)
    }
  }
  for (const q of [`?${filler}a`, `?${filler}apikey=k&api-key=k&api_ke=y&pi_key=k&x=1`, `?%7A&${filler}api%5Fkeys=k`]) {
    const none = req({}, q)
    t.equal(query.read(none), undefined, 'no parameter of the name: none')
    query.scrub(none)
    query.remove(none)
    t.equal(none.query, q, 'the query as sent')
  }
  const named = compileLocation({ query: 'Ap\u212Ai.Key' })
  t.equal(named.read(req({}, `?${filler}apki_key=k`)), undefined, 'a name configured past ASCII is folded as a name sent so is')
  const scrubbed = req({}, `?${filler}apki_key=k`)
  named.scrub(scrubbed)
  t.equal(scrubbed.query, `?${filler.slice(0, -1)}`, 'so its copy in another case goes')
})
