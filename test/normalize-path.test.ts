import t from 'tap'
import { normalizePath, routingForm } from '../src/routing/normalize-path.ts'

/** Raw path → canonical path, or undefined when the gateway must answer 400. */
const GROUPS: Record<string, ReadonlyArray<readonly [string, string | undefined]>> = {
  'canonical paths are returned unchanged': [
    ['/', '/'],
    ['/users', '/users'],
    ['/users/', '/users/'],
    ['/a.b/c-d_e~f', '/a.b/c-d_e~f'],
    ['/...', '/...'],
    ['/a/.hidden', '/a/.hidden'],
    ['/a:b@c', '/a:b@c'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/%E2%82%AC/%F0%9F%98%80', '/%E2%82%AC/%F0%9F%98%80']
  ],
  'escapes of unreserved characters are decoded, other escapes upper-cased': [
    ['/%41', '/A'],
    ['/%7E', '/~'],
    ['/%7e', '/~'],
    ['/%61dmin/x', '/admin/x'],
    ['/%2D%2e%5F%30', '/-._0'],
    ['/a%3ab', '/a%3Ab'],
    ['/a%2Bb', '/a%2Bb'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/%25', '/%25'],
    ['/%252F', '/%252F'],
    ['/a%20b', '/a%20b']
  ],
  'dot segments are removed': [
    ['/a/./b/../c', '/a/c'],
    ['/..', '/'],
    ['/.', '/'],
    ['/../../x', '/x'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/b/../../..', '/'],
    ['/public/../admin/x', '/admin/x'],
    ['/public/%2e%2e/admin/x', '/admin/x'],
    ['/public/%2E%2E/admin/x', '/admin/x'],
    ['/public/.%2e/admin/x', '/admin/x'],
    ['/a/%2e/b', '/a/b']
  ],
  'duplicate slashes are collapsed': [
    ['//admin/x', '/admin/x'],
    ['/admin//x', '/admin/x'],
    ['/a///b//', '/a/b/'],
    ['//', '/']
  ],
  'paths an upstream could read differently are rejected': [
    ['/%2F', undefined],
    ['/admin%2fx', undefined],
    ['/public/..%2fadmin/x', undefined],
    ['/%5C', undefined],
    ['/a%5cb', undefined],
    ['/a\\b', undefined],
    ['/%00', undefined],
    ['/a\0b', undefined],
    ['/x\xC0\xAF..\xC0\xAFadmin/x', undefined],
    ['/admin\xE9', undefined],
    ['/caf\u00E9', undefined],
    ['/a\x7Fb', undefined],
    ['/a b', undefined],
    ['/%zz', undefined],
    ['/%4', undefined],
    ['/%', undefined],
    ['/%g1', undefined],
    ['/public/..;/admin', undefined],
    ['/public/.;/admin', undefined],
    ['/public/%2e%2e;/admin', undefined],
    ['/public/..;jsessionid=1/admin', undefined],
    ['/public/..%3b/admin', undefined],
    ['/public/%2E%2E%3B/admin', undefined],
    // Any path parameter: Java servers strip them, so the path they serve is not the one routed.
    ['/x;y=1', undefined],
    ['/foo..;/x', undefined],
    ['/admin;x/secret', undefined],
    ['/admin;/secret', undefined],
    ['/admin%3Bx/secret', undefined],
    ['/admin%3bx/secret', undefined],
    // Escapes that are not UTF-8 (Fastify's router refuses them; upgrades must be refused alike).
    ['/caf%E9', undefined],
    ['/a%80', undefined],
    ['/%C0%AF', undefined],
    ['/%C3', undefined],
    ['/%C3a', undefined],
    ['/%C3%41', undefined],
    ['/%ED%A0%80', undefined],
    ['/%F4%90%80%80', undefined],
    ['/%FF', undefined],
    ['admin', undefined],
    ['*', undefined],
    ['', undefined]
  ]
}

for (const [name, table] of Object.entries(GROUPS)) {
  t.test(name, async t => {
    for (const [raw, want] of table) t.equal(normalizePath(raw), want, JSON.stringify(raw))
  })
}

t.test('escapes of bytes from 0x80 are refused exactly when they do not decode as UTF-8, as Fastify refuses them', async t => {
  const hex = (b: number) => '%' + b.toString(16).toUpperCase().padStart(2, '0')
  const decodes = (s: string) => { try { decodeURIComponent(s); return true } catch { return false } }
  const tails = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xff].map(hex)
  const wrong: string[] = []
  for (let lead = 0x80; lead <= 0xff; lead++) {
    for (const a of tails) {
      for (const b of ['', ...tails]) {
        for (const c of ['', ...tails]) {
          const path = `/x${hex(lead)}${a}${b}${c}`
          if (/%(?:00|2F|5C|3B)/.test(path)) continue
          if ((normalizePath(path) !== undefined) !== decodes(path)) wrong.push(path)
        }
      }
    }
  }
  t.same(wrong.slice(0, 10), [], `${wrong.length} judged otherwise than decodeURIComponent`)
})

t.test('routingForm: what routes match decodes the escapes of the other characters a path segment holds as they are', async t => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ['/v1/admin%3Areset', '/v1/admin:reset'],
    ['/odata/%24metadata', '/odata/$metadata'],
    ['/%40admin/x', '/@admin/x'],
    ['/%21%24%26%27%28%29%2A%2B%2C%3D%3A%40', "/!$&'()*+,=:@"],
    ['/a%3Fb%23c%25%2F%3B', '/a%3Fb%23c%25%2F%3B'],
    ['/a%5B%5D%22%3C%3E%C3%A9', '/a%5B%5D%22%3C%3E%C3%A9'],
    ['/%252A', '/%252A'],
    ['/plain/path', '/plain/path']
  ]
  for (const [path, routed] of table) t.equal(routingForm(path), routed, path)
})
