import t, { type Test } from 'tap'
import type { OutgoingHttpHeaders } from 'node:http'
import { request } from 'undici'
import { headersGateway } from '../helpers/headers-gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { loggedTarget, redactHeaders } from '../../src/logging/logger.ts'

/** A gateway logging headers in front of an upstream answering 200 with `responseHeaders`: the access line of one request with `requestHeaders`, and every line. */
async function logged (t: Test, requestHeaders: Record<string, string>, responseHeaders: OutgoingHttpHeaders) {
  const gw = await headersGateway(t, (req, res) => { req.resume(); res.writeHead(200, responseHeaders).end() })
  const res = await request(`${gw.url}/x`, { headers: { ...requestHeaders, 'x-request-id': 'userinfo' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  return { line: await waitForLog(gw.logs, { msg: 'request', requestId: 'userinfo' }), all: JSON.stringify(gw.logs) }
}

// A password in a URL (`user:pass@`) was logged as written in URL-valued headers: only their
// query, fragment and path parameters were cut, and a value with none of those was left whole.
t.test('logging.headers: the userinfo of a URL in a URL-valued header is hidden, in the response and the request', async t => {
  const { line, all } = await logged(t, {
    referer: 'https://u:S3CRET-referer@site.example/p',
    origin: 'https://u:S3CRET-origin@h.example',
    destination: 'https://u:S3CRET-dav@h.example/dav/b',
    'x-forwarded-uri': 'HTTPS://u:S3CRET-upper@h.example/up',
    // As a URL parser reads them: a single slash or a backslash after a special scheme.
    'x-original-uri': 'https:/u:S3CRET-one-slash@h.example/o',
    'x-rewrite-url': 'https:\\\\u:S3CRET-backslash@h.example/b'
  }, {
    location: 'https://user:S3CRET-location@example.com/a/b',
    'content-location': '//u:S3CRET-relative@h.example/x',
    refresh: '5; url=https://u:S3CRET-refresh@h.example/',
    link: '<https://u:S3CRET-link@h.example/next>; rel=next, </plain>; rel=first',
    'x-original-url': 'https://u:S3CRET-original@h.example/',
    // A password holding an unencoded ?, # or @: hidden whole, not cut at its ? (leaving `u:pa`), and
    // what follows with it (the @ may be a query's).
    'x-accel-redirect': 'http://u:pa?S3CRET#x@y@h.example/f'
  })
  t.has(line, {
    reqHeaders: {
      referer: 'https://[redacted]@site.example/p',
      origin: 'https://[redacted]@h.example',
      destination: 'https://[redacted]@h.example/dav/b',
      'x-forwarded-uri': 'HTTPS://[redacted]@h.example/up',
      'x-original-uri': 'https:/[redacted]@h.example/o',
      'x-rewrite-url': 'https:\\\\[redacted]@h.example/b'
    },
    resHeaders: {
      location: 'https://[redacted]@example.com/a/b',
      'content-location': '//[redacted]@h.example/x',
      refresh: '5; url=https://[redacted]@h.example/',
      link: '<https://[redacted]@h.example/next>; rel=next, </plain>; rel=first',
      'x-original-url': 'https://[redacted]@h.example/',
      'x-accel-redirect': 'http://[redacted]@…'
    }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

t.test('logging.headers: an @ outside a URL\'s authority is not userinfo; a query after userinfo still cut', async t => {
  const { line, all } = await logged(t, { referer: '/users/bob@example.com/profile', 'x-forwarded-prefix': '/api;jsessionid=S3CRET' }, {
    location: 'mailto:bob@example.com',
    'content-location': 'https://u:S3CRET@h.example/a?token=S3CRET',
    refresh: "0;URL='https://u:S3CRET@h.example/r'"
  })
  t.has(line, {
    reqHeaders: { referer: '/users/bob@example.com/profile', 'x-forwarded-prefix': '/api;…' },
    resHeaders: { location: 'mailto:bob@example.com', 'content-location': 'https://[redacted]@h.example/a?…', refresh: "0;URL='https://[redacted]@h.example/r'" }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

// Missed: a Refresh URL after its delay and a space only (`5 URL`, `5 url=URL`: browsers need no
// `;`), a special scheme without slashes (`http:user:pass@host`) and a tab in the URL (browsers drop
// it). And an @ in the path or query was read as the end of userinfo, hiding the host and the path.
t.test('logging.headers: userinfo hidden as browsers read it; an @ after the host is not userinfo', async t => {
  const { line, all } = await logged(t, {
    referer: 'https://mastodon.social/@Gargron',
    'x-forwarded-uri': 'https://site.example/login?email=a@b.com',
    // A password with an unencoded / (no URL as browsers read it: a port `pa`): hidden whole still.
    'x-original-uri': 'https://u:pa/S3CRET-slash@h.example/o',
    refresh: '5 url=http://u:S3CRET-refresh-url@h.example/x'
  }, {
    refresh: '5 http://u:S3CRET-refresh@h.example/x',
    location: 'http:user:S3CRET-no-slash@host.example/a',
    'content-location': 'ht\ttp://user:S3CRET-tab@host.example/a',
    link: '<https://u:S3CRET-link@h.example/@name?to=a@b>; rel=next'
  })
  t.has(line, {
    reqHeaders: {
      referer: 'https://mastodon.social/@Gargron',
      'x-forwarded-uri': 'https://site.example/login?…',
      'x-original-uri': 'https://[redacted]@h.example/o',
      refresh: '5 url=http://[redacted]@h.example/x'
    },
    resHeaders: {
      refresh: '5 http://[redacted]@h.example/x',
      location: 'http:[redacted]@host.example/a',
      'content-location': 'http://[redacted]@host.example/a',
      link: '<https://[redacted]@h.example/@name?…>; rel=next'
    }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

// Three slashes, a username holding @, a password of digits then / ? or #, a non-special scheme's \\:
// each once showed a password, or part of one.
t.test('userinfo hidden in every spelling a URL parser reads one in, more rather than less', async t => {
  const cases: Record<string, string> = {
    '///u:S3CRET@h/x': '///[redacted]@h/x',
    '\\\\\\u:S3CRET@h/x': '\\\\\\[redacted]@h/x',
    'https://bob@corp.example:pa/S3CRET@h/': 'https://[redacted]@h/',
    'https://bob@corp.example:pa#S3CRET@h/': 'https://[redacted]@…',
    // A host and port, as a URL parser reads them: the rest a fragment, a path.
    'https://admin:2024#S3CRET@h/': 'https://admin:2024#…',
    'https://admin:2024/a@h/': 'https://admin:2024/a@h/',
    'redis://u:123\\S3CRET@h/': 'redis://[redacted]@h/',
    'https://u:S3CRET@[::1]:8080/x': 'https://[redacted]@[::1]:8080/x',
    'https://mastodon.social/@Gargron': 'https://mastodon.social/@Gargron',
    'httpx://u:S3CRET@h/x': 'httpx://[redacted]@h/x'
  }
  for (const [value, shown] of Object.entries(cases)) t.equal((redactHeaders({ location: value }, []) as { location: string }).location, shown, value)
  t.equal(loggedTarget('///u:S3CRET@h/x'), '///[redacted]@h/x')
})

// More headers that name a URL (WebDAV's Destination, SourceMap, the original request's URI as proxies name it) kept their query.
t.test('logging.headers: Destination, SourceMap, X-SourceMap, X-Request-URI, X-Original-Request-URI and X-Forwarded-Prefix without their query', async t => {
  const { line, all } = await logged(t, {
    destination: '/dav/b?sig=S3CRET-dav',
    'x-request-uri': '/a?api_key=S3CRET-req',
    'x-original-request-uri': '/b#access_token=S3CRET-orig',
    'x-forwarded-prefix': '/api?token=S3CRET-prefix'
  }, { sourcemap: '/app.js.map?sig=S3CRET-map', 'x-sourcemap': '/old.js.map?sig=S3CRET-old' })
  t.has(line, {
    reqHeaders: { destination: '/dav/b?…', 'x-request-uri': '/a?…', 'x-original-request-uri': '/b#…', 'x-forwarded-prefix': '/api?…' },
    resHeaders: { sourcemap: '/app.js.map?…', 'x-sourcemap': '/old.js.map?…' }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

// The usual token headers were logged unless listed in logging.redactHeaders.
t.test('logging.headers: X-Auth-Token, X-Access-Token, Private-Token and X-Amz-Security-Token redacted by default, both ways', async t => {
  const tokens = { 'x-auth-token': 'S3CRET-auth', 'x-access-token': 'S3CRET-access', 'private-token': 'S3CRET-gitlab', 'x-amz-security-token': 'S3CRET-aws' }
  const redacted = Object.fromEntries(Object.keys(tokens).map(name => [name, '[redacted]']))
  const { line, all } = await logged(t, { ...tokens, 'x-visible': 'fine' }, tokens)
  t.has(line, { reqHeaders: { ...redacted, 'x-visible': 'fine' }, resHeaders: redacted })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

// Vault's token, Google's and Azure API Management's API keys, a Cloudflare Access secret, an auth
// proxy's access token and a GitLab webhook's secret were logged unless listed in logging.redactHeaders.
t.test('logging.headers: X-Vault-Token and the other credential headers added redacted by default, both ways, in any case', async t => {
  const tokens = {
    'X-Vault-Token': 'S3CRET-vault',
    'X-Goog-Api-Key': 'S3CRET-google',
    'Ocp-Apim-Subscription-Key': 'S3CRET-apim',
    'CF-Access-Client-Secret': 'S3CRET-cloudflare',
    'X-Forwarded-Access-Token': 'S3CRET-oauth2-proxy',
    'X-Amzn-Oidc-Accesstoken': 'S3CRET-alb',
    'X-Gitlab-Token': 'S3CRET-webhook'
  }
  const redacted = Object.fromEntries(Object.keys(tokens).map(name => [name.toLowerCase(), '[redacted]']))
  const { line, all } = await logged(t, { ...tokens, x_vault_token: 'S3CRET-cgi', 'x-visible': 'fine' }, tokens)
  t.has(line, { reqHeaders: { ...redacted, x_vault_token: '[redacted]', 'x-visible': 'fine' }, resHeaders: redacted })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
  // Any line logging `headers` (pino's redact paths), not the access line alone.
  const { log, lines } = memoryLogger()
  log.info({ headers: Object.fromEntries(Object.entries(tokens).map(([name, value]) => [name.toLowerCase(), value])) }, 'headers')
  t.same(lines[0]?.headers, redacted)
})

// A username alone (a token) was logged whole when a quote (a quoted Refresh URL) or a space (before
// a Link's `>`) followed its host's port or IPv6 address; and a Link URL was split at a `<` in it.
t.test('logging.headers: a username alone before a closing quote or a space is hidden; a Link URL runs to its `>`, a `<` in it included', async t => {
  const { line, all } = await logged(t, { refresh: '5; URL="https://S3CRET-ref7@[2001:db8::1]"' }, {
    refresh: "0; url='https://S3CRET-ref2@h.example:8443'",
    link: '<https://S3CRET-link8@h.example:8443 >; rel=a, <http://bob:LINK<S3CRET-pw3@h.example/>; rel=next'
  })
  t.has(line, {
    reqHeaders: { refresh: '5; URL="https://[redacted]@[2001:db8::1]"' },
    resHeaders: {
      refresh: "0; url='https://[redacted]@h.example:8443'",
      link: '<https://[redacted]@h.example:8443 >; rel=a, <http://[redacted]@h.example/>; rel=next'
    }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

t.test('userinfo hidden before a quote, a space or a control character a URL parser drops, and in each URL a Link parser reads', async t => {
  const cases: Array<[name: string, value: string, shown: string]> = [
    ['refresh', '0; url="https://S3CRET@at@h:80"', '0; url="https://[redacted]@h:80"'],
    ['refresh', "0; url='https://S3CRET[br@h:'", "0; url='https://[redacted]@h:'"],
    ['refresh', "0; url='https://S3CRET@[::1]'", "0; url='https://[redacted]@[::1]'"],
    ['refresh', "0; url='//S3CRET@[::1]:8080'", "0; url='//[redacted]@[::1]:8080'"],
    ['location', 'https://S3CRET@h:80 ', 'https://[redacted]@h:80 '],
    // Leading C0 controls, which a URL parser drops too.
    ['location', '\x01https://u:S3CRET@h/x', '\x01https://[redacted]@h/x'],
    ['location', "\x00 redis://S3CRET@h:6379'", "\x00 redis://[redacted]@h:6379'"],
    // A link after a comma, though a `<` in a quoted parameter came first; a `<…>` inside a link's URL.
    ['link', '<a>; title="<b", <https://u:S3CRET<x@h/>', '<a>; title="<b", <https://[redacted]@h/>'],
    ['link', '<https://h/a<https://u:S3CRET@h2/>', '<https://h/a<https://[redacted]@h2/>']
  ]
  for (const [name, value, shown] of cases) t.equal(redactHeaders({ [name]: value }, [])[name], shown, JSON.stringify(value))
})

// Any `:` in the authority hid everything up to the value's last @, a query's or a fragment's
// included: nothing was left to cut, and the rest of the query was logged (`https://[redacted]@corp.com&access_token=…`).
t.test('logging.headers: an @ in the query or fragment of a URL with a port is not userinfo; a hidden span holding a query hides the rest', async t => {
  const { line, all } = await logged(t, {
    referer: 'https://app.example.com:8443/p?email=bob@corp.com&access_token=S3CRET-referer',
    refresh: '0; url=https://app.example.com:8443/p?email=bob@corp.com&code=S3CRET-refresh'
  }, {
    location: 'https://sso.example.com:8443/cb?login_hint=bob@corp.com&code=S3CRET-location',
    'content-location': 'https://sso.example.com:8443/cb#login_hint=bob@corp.com&access_token=S3CRET-fragment',
    link: '<https://api:8443/items?owner=bob@corp.com&access_token=S3CRET-link>; rel=next',
    'x-original-url': '//app:81/x;jsessionid=S3CRET-jsession@b',
    'x-accel-redirect': 'myapp://host/cb?email=bob@corp.com&code=S3CRET-custom'
  })
  t.has(line, {
    reqHeaders: { referer: 'https://app.example.com:8443/p?…', refresh: '0; url=https://app.example.com:8443/p?…' },
    resHeaders: {
      location: 'https://sso.example.com:8443/cb?…',
      'content-location': 'https://sso.example.com:8443/cb#…',
      link: '<https://api:8443/items?…>; rel=next',
      'x-original-url': '//app:81/x;…',
      'x-accel-redirect': 'myapp://[redacted]@…'
    }
  })
  t.notOk(all.includes('S3CRET'), 'no secret anywhere in the log')
})

t.test('an @ after a host and port is not userinfo; what a hidden span swallowed a query start of is left out', async t => {
  const cases: Record<string, string> = {
    'https://host:8443/@user': 'https://host:8443/@user',
    'https://host:8080?x@y': 'https://host:8080?…',
    'https://host:99/a@b/c': 'https://host:99/a@b/c',
    'https://host:/p?to=a@b&t=S3CRET': 'https://host:/p?…',
    'https://u:pa/ss@h/p?email=bob@corp.com&t=S3CRET': 'https://[redacted]@…',
    'https://u:S3CRET@h:8443/p?email=bob@corp.com&t=S3CRET': 'https://[redacted]@h:8443/p?…',
    'myapp://host/cb#email=bob@corp.com&code=S3CRET': 'myapp://[redacted]@…'
  }
  for (const [value, shown] of Object.entries(cases)) t.equal(redactHeaders({ location: value }, []).location, shown, value)
  // A refused target too: an absolute one, and a URL in a path whose @ is a fragment's.
  t.equal(loggedTarget('https://app.example.com:8443/p?email=bob@corp.com&access_token=S3CRET'), 'https://app.example.com:8443/p')
  t.equal(loggedTarget('myapp://host/cb?email=bob@corp.com&code=S3CRET'), 'myapp://[redacted]@…')
  t.equal(loggedTarget('/go/https://h#a@b&token=S3CRET'), '/go/https://[redacted]@…')
  t.equal(loggedTarget('/go/https://u:S3CRET@h/x?to=a@b'), '/go/https://[redacted]@h/x')
})
