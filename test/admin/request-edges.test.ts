import t, { type Test } from 'tap'
import type { RawResponse } from '../helpers/raw-http.ts'
import { adminPort } from '../helpers/admin-port.ts'

const TOKEN = 'correct-horse-battery-staple'

/** A gateway's admin port; `send` writes a raw request, `reloaded` whether GET /config's lastReload shows a reload. */
async function admin (t: Test, token?: string) {
  const port = await adminPort(t, token)
  return { gw: port.gw, send: port.raw, reloaded: async () => await port.lastReload() !== null }
}

/** The admin API's JSON error: its status and code; its message. */
function refused (t: Test, res: RawResponse, status: number, error: string, name: string): string {
  t.equal(res.status, status, `${name}: ${status}`)
  t.match(res.headers.find(([n]) => n === 'content-type')?.[1], /^application\/json/, `${name}: JSON`)
  const body = JSON.parse(res.body === '' ? '{}' : res.body) as { error?: string, message?: string }
  t.equal(body.error, error, `${name}: ${error}`)
  return body.message ?? ''
}

// Node answered a bare 417 with an empty body.
t.test('an Expect other than 100-continue: 417 expectation_failed in JSON, as on the gateway\'s port', async t => {
  const { send } = await admin(t)
  refused(t, await send(['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Expect: foo']), 417, 'expectation_failed', 'Expect: foo')
  t.equal((await send(['GET /healthz HTTP/1.1', 'Host: 127.0.0.1'])).status, 200, 'without it: served')
})

// All of these were served (200), the first Host, or the undecoded body, taken.
t.test('what the gateway\'s port refuses is refused here too: HTTP/2.0 and HTTP/0.9 request lines, two Hosts, transfer codings, encoded bodies', async t => {
  const { send, reloaded } = await admin(t)
  for (const version of ['HTTP/2.0', 'HTTP/0.9']) {
    const res = await send([`GET /healthz ${version}`, 'Host: 127.0.0.1'])
    refused(t, res, 505, 'http_version_not_supported', version)
    t.match(res.head, /\r\nconnection: close/i, `${version}: the connection is not kept`)
  }
  refused(t, await send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', 'Host: 127.0.0.2']), 400, 'bad_host', 'two Hosts')
  const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`
  const json = ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json']
  refused(t, await send([...json, 'Transfer-Encoding: gzip, chunked'], chunk('{}')), 501, 'unsupported_transfer_coding', 'Transfer-Encoding: gzip, chunked')
  const gzip = refused(t, await send([...json, 'Content-Encoding: gzip', 'Content-Length: 2'], '{}'), 415, 'unsupported_media_type', 'Content-Encoding: gzip')
  t.match(gzip, /Content-Encoding "gzip"/, 'the message names the coding')
  refused(t, await send([...json, 'Content-Encoding: identity, br', 'Content-Length: 2'], '{}'), 415, 'unsupported_media_type', 'Content-Encoding: identity, br')
  t.notOk(await reloaded(), 'none of them reloaded')
  t.equal((await send([...json, 'Content-Encoding: identity', 'Content-Length: 2'], '{}')).status, 200, 'Content-Encoding: identity is none')
  t.equal((await send(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Content-Encoding: gzip'])).status, 200, 'nor does it matter without a body')
})

// Both were 415 though the docs say an empty body is none whatever its type.
t.test('an empty body is none, however framed: Content-Length: 00, a chunked body of no chunk; a chunked one with a byte is judged', async t => {
  const { send } = await admin(t)
  const post = ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1']
  t.equal((await send([...post, 'Content-Length: 00'])).status, 200, 'Content-Length: 00')
  t.equal((await send([...post, 'Transfer-Encoding: chunked'], '0\r\n\r\n')).status, 200, 'chunked, no chunk, no Content-Type')
  t.equal((await send([...post, 'Content-Type: text/plain', 'Transfer-Encoding: chunked'], '0\r\n\r\n')).status, 200, 'chunked, no chunk, text/plain')
  const text = await send([...post, 'Content-Type: text/plain', 'Transfer-Encoding: chunked'], '1\r\na\r\n0\r\n\r\n')
  refused(t, text, 415, 'unsupported_media_type', 'a chunked text/plain byte')
  t.match(text.head, /\r\nconnection: close/i, 'refused at its first byte, the connection not kept')
  refused(t, await send([...post, 'Content-Length: 01'], 'a'), 415, 'unsupported_media_type', 'Content-Length: 01 of no type')
  t.equal((await send([...post, 'Content-Type: application/json', 'Transfer-Encoding: chunked'], '2\r\n{}\r\n0\r\n\r\n')).status, 200, 'chunked JSON')
})

t.test('without admin.token, what a browser marks as another site\'s or origin\'s is refused (Sec-Fetch-Site), Origin or not, but for a GET or HEAD navigation', async t => {
  const { send } = await admin(t)
  for (const site of ['cross-site', 'same-site', 'Cross-Site', 'bogus']) {
    const message = refused(t, await send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', `Sec-Fetch-Site: ${site}`]), 403, 'origin_refused', `Sec-Fetch-Site: ${site}`)
    t.match(message, /Sec-Fetch-Site/)
  }
  // A dashboard's link (Grafana on localhost:3000 to localhost:9901) was refused: the page cannot read what it opens.
  for (const [method, site] of [['GET', 'same-site'], ['GET', 'cross-site'], ['HEAD', 'cross-site']]) {
    const res = await send([`${method} /upstreams HTTP/1.1`, 'Host: localhost:9901', `Sec-Fetch-Site: ${site}`, 'Sec-Fetch-Mode: navigate', 'Sec-Fetch-Dest: document'])
    t.equal(res.status, 200, `${method}, ${site}, a navigation: served`)
  }
  // What the page embeds or fetches (an img, a script: no-cors) still is not, nor an unsafe method however sent.
  for (const mode of ['no-cors', 'cors', 'same-origin']) {
    refused(t, await send(['GET /upstreams HTTP/1.1', 'Host: 127.0.0.1', 'Sec-Fetch-Site: cross-site', `Sec-Fetch-Mode: ${mode}`]), 403, 'origin_refused', `Sec-Fetch-Mode: ${mode}`)
  }
  refused(t, await send(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Sec-Fetch-Site: cross-site', 'Sec-Fetch-Mode: navigate']), 403, 'origin_refused', 'a POST navigation')
  for (const site of ['none', 'same-origin']) {
    t.equal((await send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', `Sec-Fetch-Site: ${site}`])).status, 200, `Sec-Fetch-Site: ${site} (typed in the address bar)`)
  }
  const withToken = await admin(t, TOKEN)
  t.equal((await withToken.send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'Sec-Fetch-Site: cross-site'])).status, 200, 'with admin.token: the token decides')
})
