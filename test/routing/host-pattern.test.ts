import t from 'tap'
import { hostHeaderProblem, hostMatches, hostOf, isValidHost, normalizeHost, parseHostPattern } from '../../src/routing/host-pattern.ts'

t.test('normalizeHost: lower case, no port, no trailing dot', async t => {
  const table: ReadonlyArray<readonly [string | undefined, string]> = [
    [undefined, ''],
    ['', ''],
    ['example.com', 'example.com'],
    ['API.Example.COM', 'api.example.com'],
    ['api.example.com:8080', 'api.example.com'],
    ['api.example.com:', 'api.example.com'],
    ['API.Example.com.:8080', 'api.example.com'],
    ['example.com.', 'example.com'],
    ['a.', 'a'],
    // Only one dot: `example.com..` is no name a client resolved.
    ['example.com..', 'example.com.'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[FE80::1]:443', '[fe80::1]'],
    // An unclosed bracket is kept whole, colons included.
    ['[::1', '[::1']
  ]
  for (const [raw, want] of table) t.equal(normalizeHost(raw), want, JSON.stringify(raw))
})

t.test('parseHostPattern: exact names are normalized, *. is a sub-domain wildcard', async t => {
  t.strictSame(parseHostPattern('api.example.com'), { kind: 'exact', host: 'api.example.com' })
  t.strictSame(parseHostPattern('API.Example.COM.'), { kind: 'exact', host: 'api.example.com' })
  t.strictSame(parseHostPattern('[::1]'), { kind: 'exact', host: '[::1]' })
  t.strictSame(parseHostPattern('[2001:DB8::]'), { kind: 'exact', host: '[2001:db8::]' })
  t.strictSame(parseHostPattern('*.Example.COM'), { kind: 'wildcard', suffix: '.example.com' })
  t.strictSame(parseHostPattern('*.api.example.com'), { kind: 'wildcard', suffix: '.api.example.com' })
  t.strictSame(parseHostPattern('*.Example.com.'), { kind: 'wildcard', suffix: '.example.com' }, 'a trailing dot, as exact names have (it never matched)')
})

t.test('parseHostPattern: rejected patterns, with their error', async t => {
  const wildcard = 'only a leading "*." wildcard is allowed'
  const table: ReadonlyArray<readonly [string, string]> = [
    ['*', wildcard],
    ['*example.com', wildcard],
    ['api.*.com', wildcard],
    ['api.example.*', wildcard],
    ['*.*.example.com', wildcard],
    ['*.api*.example.com', wildcard],
    ['api.example.com:443', 'must not include a port'],
    ['api.example.com:', 'must not include a port'],
    ['[::1]:8080', 'must not include a port'],
    ['[::1]:', 'must not include a port'],
    ['*.example.com:443', 'must not include a port']
  ]
  for (const [pattern, want] of table) t.equal(parseHostPattern(pattern), want, pattern)
})

t.test('parseHostPattern: only hosts a request can name, in the grammar its Host is held to', async t => {
  const notHost = 'is not a host name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)), an IPv4 address or an IPv6 one in brackets'
  const notDomain = 'after "*." comes a domain name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed))'
  const table: ReadonlyArray<readonly [string, string]> = [
    // `*.` alone would match every host (its suffix empty), ahead of the routes without a host.
    ['*.', 'a wildcard needs a domain after "*." (as in *.example.com)'],
    ['*..example.com', notDomain],
    ['*.[::1]', notDomain],
    ['*.a b.com', notDomain],
    ['api.example.com/x', notHost],
    ['api example.com', notHost],
    ['.example.com', notHost],
    ['a..example.com', notHost],
    ['user@api.example.com', notHost],
    ['[::1', notHost],
    // Only a leading bracket opens an IPv6 literal.
    ['api.example.com:443]', notHost],
    ['https://api.example.com', 'write the host name only, without "https://"'],
    ['HTTP://api.example.com/', 'write the host name only, without "HTTP://"']
  ]
  for (const [pattern, want] of table) t.equal(parseHostPattern(pattern), want, pattern)
  t.strictSame(parseHostPattern('10.0.0.1'), { kind: 'exact', host: '10.0.0.1' })
  t.strictSame(parseHostPattern('my_host.internal'), { kind: 'exact', host: 'my_host.internal' })
})

t.test('hostHeaderProblem: a route\'s hostHeader is a valid Host, port allowed', async t => {
  for (const ok of ['users.internal', 'users.internal:8080', '10.0.0.1:80', '[::1]:8443', 'Users.Internal.']) t.equal(hostHeaderProblem(ok), undefined, ok)
  const notHost = 'is not host[:port]: a host name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)), an IPv4 address or an IPv6 one in brackets, then maybe a port'
  for (const bad of ['a\r\nx-evil: 1', 'a b', 'users.internal/x', 'users.internal:x', '']) t.equal(hostHeaderProblem(bad), notHost, JSON.stringify(bad))
  t.equal(hostHeaderProblem('https://users.internal'), 'write the host[:port] only, without "https://"')
})

t.test('hostMatches: an exact host only itself; a wildcard its sub-domains, not the domain', async t => {
  const exact = { kind: 'exact', host: 'api.example.com' } as const
  const wildcard = { kind: 'wildcard', suffix: '.example.com' } as const
  const table: ReadonlyArray<readonly [string, boolean, boolean]> = [
    // host, matches exact, matches wildcard
    ['api.example.com', true, true],
    ['a.b.example.com', false, true],
    ['example.com', false, false],
    ['evilexample.com', false, false],
    ['api.example.com.evil.test', false, false],
    ['api.example.co', false, false],
    ['.example.com', false, false],
    ['a..example.com', false, false],
    ['', false, false]
  ]
  for (const [host, wantExact, wantWildcard] of table) {
    t.equal(hostMatches(exact, host), wantExact, `api.example.com ~ ${host}`)
    t.equal(hostMatches(wildcard, host), wantWildcard, `*.example.com ~ ${host}`)
  }
})

t.test('isValidHost, hostOf: a name, IPv4 or bracketed IPv6 address, then maybe a port; nothing a URL parser would read as another host', async t => {
  const valid: ReadonlyArray<readonly [string, string]> = [
    ['example.com', 'example.com'],
    ['API.Example.COM:8080', 'API.Example.COM'],
    ['example.com.', 'example.com.'],
    ['example.com.:443', 'example.com.'],
    ['x_y-z.internal', 'x_y-z.internal'],
    ['localhost', 'localhost'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[2001:DB8::1]:8443', '[2001:DB8::1]'],
    ['example.com:', 'example.com'], // RFC 3986: an empty port is allowed
    ['example.com:65535', 'example.com'],
    ['example.com:09999', 'example.com'],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`]
  ]
  for (const [value, host] of valid) {
    t.ok(isValidHost(value), value)
    t.equal(hostOf(value), host, `host of ${value}`)
  }
  const invalid = [
    '', ':80', 'public.example.com:x@admin.example.com', 'user@example.com', 'evil.com/.apps.example.com',
    'evil.com?.apps.example.com', 'evil.com#.apps.example.com', '.apps.example.com', 'a..b', 'a.b..', '.',
    'a b', 'a\tb', 'a%2eb', 'a!b', 'example.com:123456', 'example.com:65536', 'example.com:99999', '[::1]:70000', '[.]', '[:::::]:1', '[1.2.3.4]', 'example.com:8o', 'example.com:80:80',
    '[::1', '[::1]x', '[::1]:80:80', '[example.com]', 'exa\u00e9mple.com', `${'a'.repeat(254)}`
  ]
  for (const value of invalid) {
    t.notOk(isValidHost(value), JSON.stringify(value))
    t.equal(hostOf(value), undefined, `no host of ${JSON.stringify(value)}`)
  }
})
