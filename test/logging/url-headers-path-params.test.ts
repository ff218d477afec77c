import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitForLog } from '../helpers/logs.ts'

// URL headers were cut at `?` and `#` only, where a logged path is also cut at its first path
// parameter (`;`, `%3B`): Tomcat's and Jetty's `;jsessionid=` (clients without cookies) in Location,
// Content-Location or Referer was logged whole, as were X-Accel-Redirect's `?sig=` and Link-Template's
// (RFC 9652) `?access_token=`.
t.test('logging.headers: URL headers cut at their first path parameter too; X-Accel-Redirect and Link-Template cut', async t => {
  const up = await startUpstream((req, res) => {
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
  t.teardown(() => up.close())
  const gw = await startGateway(`logging: { headers: true }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
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
