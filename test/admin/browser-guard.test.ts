import t, { type Test } from 'tap'
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts'
import { adminPort } from '../helpers/admin-port.ts'

const TOKEN = 'correct-horse-battery-staple'

/** A gateway's admin port, with or without a token; `send` writes a raw request to it. */
async function admin (t: Test, token?: string) {
  const { port, raw, lastReload } = await adminPort(t, token)
  return {
    port,
    lastReload,
    send: (method: string, path: string, headers: string[], body = '') =>
      raw([`${method} ${path} HTTP/1.1`, ...headers, ...(body === '' ? [] : [`Content-Length: ${Buffer.byteLength(body)}`])], body)
  }
}

const error = (res: RawResponse) => (JSON.parse(res.body) as { error: string }).error

t.test('a request from a web page is refused: any Origin, a body that is not JSON', async t => {
  const { port, send, lastReload } = await admin(t)
  const host = `Host: 127.0.0.1:${port}`
  // A form or a "simple" fetch: no CORS preflight, so the browser sends it as is.
  const csrf = await send('POST', '/config/reload', [host, 'Origin: https://evil.example', 'Content-Type: text/plain'], '{}')
  t.equal(csrf.status, 403)
  t.equal(error(csrf), 'origin_refused')
  for (const origin of [`http://127.0.0.1:${port}`, 'null']) {
    const res = await send('GET', '/config', [host, `Origin: ${origin}`])
    t.equal(res.status, 403, `Origin: ${origin} refused too: admin clients send none`)
  }
  const plain = await send('POST', '/config/reload', [host, 'Content-Type: text/plain'], '{}')
  t.equal(plain.status, 415, 'a text/plain body (no Origin, as an old browser might) is refused')
  t.equal(error(plain), 'unsupported_media_type')
  t.equal(await lastReload(), null, 'none of them reloaded')
  t.equal((await send('POST', '/config/reload', [host])).status, 200, 'curl -X POST, no body: reloads')
  t.not(await lastReload(), null)
  t.equal((await send('POST', '/config/reload', [host, 'Content-Type: application/json; charset=utf-8'], '{}')).status, 200, 'a JSON body is fine')
})

t.test('without a token, only an address or localhost as Host: a rebound DNS name is refused', async t => {
  const { port, send } = await admin(t)
  for (const path of ['/config', '/routes', '/metrics', '/healthz']) {
    const res = await send('GET', path, [`Host: attacker.example:${port}`])
    t.equal(res.status, 403, `${path} by a DNS name`)
    t.equal(error(res), 'host_refused')
    t.notMatch(res.body, /upstreams|portcullis_/, 'nothing of it read')
  }
  t.equal((await send('POST', '/config/reload', [`Host: localhost.attacker.example:${port}`])).status, 403)
  for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`]) {
    t.equal((await send('GET', '/metrics', [`Host: ${host}`])).status, 200, `Host: ${host} scrapes`)
  }
  t.equal((await rawRequest(port, ['GET /healthz HTTP/1.0', ''])).status, 200, 'HTTP/1.0 without Host: a probe, not a browser')
})

t.test('with a token, any Host: Prometheus scrapes and probes by a DNS name', async t => {
  const { port, send } = await admin(t, TOKEN)
  t.equal((await send('GET', '/metrics', [`Host: gateway-0.gateway.svc:${port}`, `Authorization: Bearer ${TOKEN}`])).status, 200)
  t.equal((await send('GET', '/readyz', [`Host: gateway-0.gateway.svc:${port}`])).status, 200)
  t.equal((await send('GET', '/metrics', [`Host: gateway-0.gateway.svc:${port}`, `Authorization: Bearer ${TOKEN}`, 'Origin: https://evil.example'])).status, 403, 'Origin still refused')
})

// An empty body with a Content-Type was refused: 400 "Body cannot be empty" (JSON), 415 (curl -d '').
t.test('POST /config/reload takes no body: an empty one of any type reloads; a non-empty non-JSON one is still 415', async t => {
  const { port, send } = await admin(t)
  const host = `Host: 127.0.0.1:${port}`
  const reloaded = (res: RawResponse) => (JSON.parse(res.body) as { result?: string }).result
  const json = await send('POST', '/config/reload', [host, 'Content-Type: application/json'])
  t.equal(json.status, 200, `curl -X POST -H 'Content-Type: application/json': ${json.body}`)
  t.equal(reloaded(json), 'success')
  for (const type of ['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
    const res = await send('POST', '/config/reload', [host, `Content-Type: ${type}`, 'Content-Length: 0'])
    t.equal(res.status, 200, `${type}, Content-Length: 0: ${res.body}`)
  }
  const form = await send('POST', '/config/reload', [host, 'Content-Type: application/x-www-form-urlencoded'], 'a=1')
  t.equal(form.status, 415)
  t.equal(error(form), 'unsupported_media_type')
  const poisoned = await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '{"__proto__": {"admin": true}}')
  t.equal(poisoned.status, 400)
  t.match(JSON.parse(poisoned.body), { error: 'bad_request', message: /"__proto__"/ }, 'the message says what is refused, not "not valid JSON"')
  const constructor = await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '{"a": {"constructor": {"prototype": {}}}}')
  t.match(JSON.parse(constructor.body), { error: 'bad_request', message: /constructor\.prototype/ })
  const bad = await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '{bad')
  t.match(JSON.parse(bad.body), { error: 'bad_request', message: 'the body is not valid JSON' })
  t.equal(reloaded(await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '{"a": {"constructor": 1}}')), 'success', 'a plain "constructor" key is fine')
  // Checked in a loop: JSON nested deeper than a recursive check's stack is refused for its depth (64 levels at most), not a crash.
  const deep = await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '['.repeat(20_000) + ']'.repeat(20_000))
  t.match(JSON.parse(deep.body), { error: 'bad_request', message: /more than 64 levels deep/ }, 'deeply nested JSON')
  const deepPoison = await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '['.repeat(63) + '{"__proto__": 1}' + ']'.repeat(63))
  t.match(JSON.parse(deepPoison.body), { error: 'bad_request', message: /"__proto__"/ }, 'found at any depth allowed')
  t.equal(reloaded(await send('POST', '/config/reload', [host, 'Content-Type: application/json'], '  \n ')), 'success', 'white space alone is no body')
})
