import t from 'tap'
import { request } from 'undici'
import { headersGateway } from '../helpers/headers-gateway.ts'
import { waitForLog } from '../helpers/logs.ts'

// With logging.headers, URL-valued headers were logged whole, though access lines leave the path's
// query out (an API key may be in it): a page's ?api_key= in Referer, OAuth's ?code= in Location.
t.test('logging.headers: Referer, Location and Content-Location without their query or fragment', async t => {
  const gw = await headersGateway(t, (req, res) => {
    req.resume()
    res.writeHead(302, {
      location: 'https://app.example/callback?code=S3CRET-code&state=x',
      'content-location': '/page#access_token=S3CRET-token',
      'x-upstream': 'https://kept.example/?as=is'
    }).end()
  })
  const res = await request(`${gw.url}/x`, { headers: { referer: 'https://app.example/page?api_key=S3CRET-key', 'x-request-id': 'with-query' } })
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, 'https://app.example/callback?code=S3CRET-code&state=x', 'the client gets them whole')
  await res.body.dump()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'with-query' }), {
    reqHeaders: { referer: 'https://app.example/page?…' },
    resHeaders: { location: 'https://app.example/callback?…', 'content-location': '/page#…', 'x-upstream': 'https://kept.example/?as=is' }
  })
  t.notOk(JSON.stringify(gw.logs).includes('S3CRET'), 'no secret anywhere in the log')

  const plain = await request(`${gw.url}/y`, { headers: { referer: 'https://app.example/page', 'x-request-id': 'plain' } })
  await plain.body.dump()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'plain' }), { reqHeaders: { referer: 'https://app.example/page' } }, 'one without a query as sent')
})

// The request's original URL as a proxy or a client names it (X-Forwarded-Uri, X-Original-URL,
// X-Rewrite-URL; nginx auth_request's X-Original-URI, Envoy's X-Envoy-Original-Path), and
// Refresh's `N; url=...`, were logged whole.
t.test('logging.headers: X-Forwarded-Uri, X-Original-URL, X-Original-URI, X-Envoy-Original-Path, X-Rewrite-URL and Refresh without their query or fragment', async t => {
  const gw = await headersGateway(t, (req, res) => { req.resume(); res.writeHead(200, { refresh: '5; url=https://app.example/next?ticket=S3CRET-refresh' }).end() })
  const res = await request(`${gw.url}/x`, {
    headers: {
      'x-forwarded-uri': '/login?api_key=S3CRET-fwd',
      'x-original-url': '/a#access_token=S3CRET-orig',
      'x-rewrite-url': '/b?sig=S3CRET-rewrite',
      'X-Original-URI': '/c?token=S3CRET-nginx',
      'X-Envoy-Original-Path': '/d#access_token=S3CRET-envoy',
      'x-request-id': 'more-urls'
    }
  })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'more-urls' }), {
    reqHeaders: { 'x-forwarded-uri': '/login?…', 'x-original-url': '/a#…', 'x-rewrite-url': '/b?…', 'x-original-uri': '/c?…', 'x-envoy-original-path': '/d#…' },
    resHeaders: { refresh: '5; url=https://app.example/next?…' }
  })
  t.notOk(JSON.stringify(gw.logs).includes('S3CRET'), 'no secret anywhere in the log')
})

// A Link field's URLs (a next page's ?access_token=, GitHub-style pagination) were logged whole.
t.test('logging.headers: each URL of a Link field without its query or fragment, the rest kept', async t => {
  const gw = await headersGateway(t, (req, res) => {
    req.resume()
    res.writeHead(200, { link: '<https://api.example/x?page=2&access_token=S3CRET-next>; rel="next", </plain>; rel="first", </f#t=S3CRET-frag>; rel="last"' }).end()
  })
  const res = await request(`${gw.url}/x`, { headers: { link: '</req?key=S3CRET-req>; rel=preload', 'x-request-id': 'links' } })
  await res.body.dump()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'links' }), {
    reqHeaders: { link: '</req?…>; rel=preload' },
    resHeaders: { link: '<https://api.example/x?…>; rel="next", </plain>; rel="first", </f#…>; rel="last"' }
  })
  t.notOk(JSON.stringify(gw.logs).includes('S3CRET'), 'no secret anywhere in the log')
})

// URL headers were cut at `?` and `#` only, where a logged path is also cut at its first path
// parameter (`;`, `%3B`): Tomcat's and Jetty's `;jsessionid=` (clients without cookies) in Location,
// Content-Location or Referer was logged whole, as were X-Accel-Redirect's `?sig=` and Link-Template's
// (RFC 9652) `?access_token=`.
t.test('logging.headers: URL headers cut at their first path parameter too; X-Accel-Redirect and Link-Template cut', async t => {
  const gw = await headersGateway(t, (req, res) => {
    req.resume()
    res.writeHead(302, {
      location: 'https://shop.example/cart;jsessionid=S3CRET1?x=1',
      'content-location': '/cart%3bJSESSIONID=S3CRET2',
      'x-accel-redirect': '/protected/f.pdf?sig=S3CRET3',
      'link-template': '</widgets/{id}?access_token=S3CRET4>; rel="item", </w{?page}>; rel="list"',
      refresh: '0; url=/next;jsessionid=S3CRET5',
      link: '</a;jsessionid=S3CRET6>; rel="next"'
    }).end()
  })
  const res = await request(`${gw.url}/x`, { headers: { referer: 'https://shop.example/p;jsessionid=S3CRET7', 'x-original-uri': '/c%3Bapi_key=S3CRET8', 'x-request-id': 'params' } })
  t.equal(res.statusCode, 302)
  await res.body.dump()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'params' }), {
    reqHeaders: { referer: 'https://shop.example/p;…', 'x-original-uri': '/c;…' },
    resHeaders: {
      location: 'https://shop.example/cart;…',
      'content-location': '/cart;…',
      'x-accel-redirect': '/protected/f.pdf?…',
      'link-template': '</widgets/{id}?…>; rel="item", </w{?…>; rel="list"',
      refresh: '0; url=/next;…',
      link: '</a;…>; rel="next"'
    }
  })
  t.notOk(JSON.stringify(gw.logs).includes('S3CRET'), 'no secret anywhere in the log')
})
