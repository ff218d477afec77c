import t from 'tap'
import { redactSecrets } from '../../src/config/redact.ts'

t.test('header values are redacted whatever their names: header edits, OTLP headers, header matchers', async t => {
  t.same(redactSecrets({
    plugins: {
      opentelemetry: { endpoint: 'https://api.honeycomb.io/v1/traces', headers: { 'x-honeycomb-team': 'hc-123' } },
      'request-headers': { set: { 'x-upstream-auth': 'u-123', cookie: 'sid=1' }, add: { 'x-a': 'a-123' }, remove: ['x-b'], rename: { 'x-c': 'x-d' } }
    },
    routes: [{ match: { path: '/', headers: { 'x-tenant': 'acme' } } }],
    logging: { headers: true },
    server: { timeouts: { headers: '30s' } },
    cors: { headers: ['x-tenant'] }
  }), {
    plugins: {
      opentelemetry: { endpoint: 'https://api.honeycomb.io/v1/traces', headers: { 'x-honeycomb-team': '[redacted]' } },
      'request-headers': { set: { 'x-upstream-auth': '[redacted]', cookie: '[redacted]' }, add: { 'x-a': '[redacted]' }, remove: ['x-b'], rename: { 'x-c': 'x-d' } }
    },
    routes: [{ match: { path: '/', headers: { 'x-tenant': '[redacted]' } } }],
    logging: { headers: true },
    server: { timeouts: { headers: '30s' } },
    cors: { headers: ['x-tenant'] }
  }, 'maps only: a flag, a duration or a list of names under `headers` is kept')
})

t.test('URLs anywhere in a string: any userinfo, secret-looking query values', async t => {
  t.same(redactSecrets({
    a: 'https://TOKEN@uptrace.dev/1',
    b: 'redis://:p@ss@h:6379',
    c: 'redis://user:pw@h:6379/0',
    d: 'https://collector/v1/traces?api_key=k-123&region=eu&X-Amz-Signature=s-123&sig=s&access_token=t',
    e: 'see https://u:p@a.example and https://b.example/?token=t-1',
    f: 'plain text with a@b and ?token=x but no URL',
    g: 'https://example.com/path?page=2'
  }), {
    a: 'https://[redacted]@uptrace.dev/1',
    b: 'redis://[redacted]@h:6379',
    c: 'redis://[redacted]@h:6379/0',
    d: 'https://collector/v1/traces?api_key=[redacted]&region=eu&X-Amz-Signature=[redacted]&sig=[redacted]&access_token=[redacted]',
    e: 'see https://[redacted]@a.example and https://b.example/?token=[redacted]',
    f: 'plain text with a@b and ?token=x but no URL',
    g: 'https://example.com/path?page=2'
  })
})

t.test('a string that is one URL: all up to its last @ is hidden, a password with an unencoded space, ? or / included (a valid store URL once showed it)', async t => {
  t.same(redactSecrets({
    a: 'redis://u:SEC RET@h:6379',
    b: 'redis://us?er@h:6379/0',
    c: 'https://u:SEC/RET@h/x',
    d: 'http://h/@me'
  }), {
    a: 'redis://[redacted]@h:6379',
    b: 'redis://[redacted]@h:6379/0',
    c: 'https://[redacted]@h/x',
    d: 'http://[redacted]@me'
  }, 'an @ in the path hides more than the userinfo, never less')
})

t.test('a secret-ish word in a key hides strings, not the numbers and flags that only mention it', async t => {
  t.same(redactSecrets({
    plugins: { 'jwt-auth': { secret: 's-123', maxTokenBytes: 8192, hideCredentials: true, tokenCacheSize: 100 } },
    store: { password: 123456, pin: 42, apiKey: 987, keyPrefix: 'pc:' },
    admin: { token: 'a-123' },
    consumers: [{ id: 'c', credentials: { 'key-auth': { key: 'k' }, basic: { password: 'p', enabled: true } } }]
  }), {
    plugins: { 'jwt-auth': { secret: '[redacted]', maxTokenBytes: 8192, hideCredentials: true, tokenCacheSize: 100 } },
    store: { password: '[redacted]', pin: 42, apiKey: '[redacted]', keyPrefix: '[redacted]' },
    admin: { token: '[redacted]' },
    consumers: [{ id: 'c', credentials: { 'key-auth': { key: '[redacted]' }, basic: { password: '[redacted]', enabled: '[redacted]' } } }]
  }, 'a number ending in a secret word (a numeric password) stays hidden, and so does all under a secret key')
})

t.test('a name is not a secret: plugin, upstream and store names with "key" or "token" in them hide nothing of their settings', async t => {
  const shown = redactSecrets({
    plugins: { 'key-auth': { header: 'x-api-key', query: 'api_key', hideCredentials: true, realm: 'api' } },
    upstreams: {
      'api-keys': { targets: [{ url: 'http://10.0.0.1:80' }], tls: { ca: 'ca.pem', cert: 'client.pem', key: 'client-key.pem' } },
      tokens: { targets: [{ url: 'http://svc:pw@10.0.0.2:80' }], healthCheck: { path: '/health' } }
    },
    stores: { secrets: { type: 'redis', url: 'redis://u:redis-pw@h:6379', password: 'store-pw', keyPrefix: 'pc:', db: 2 } },
    routes: [{
      name: 'token-exchange',
      upstream: 'api-keys',
      plugins: {
        'key-auth': { header: 'x-api-key', store: 'keys' },
        cache: { key: { host: true, query: { include: ['page'] }, headers: ['x-tenant'] } },
        'jwt-auth': { secret: 'jwt-secret-123', keys: ['-----BEGIN PUBLIC KEY-----'], maxTokenBytes: 8192, hideCredentials: true },
        'token-plugin': { clientSecret: 'cs-123', apiKey: { id: 'k1', value: 'ak-123' }, timeout: '1s' }
      }
    }],
    consumers: [{
      id: 'key-holder',
      metadata: { 'rate-limit': { limit: 10 }, apiToken: 'meta-123' },
      credentials: { 'key-auth': { keys: ['consumer-key-123'] }, 'basic-auth': { username: 'u', password: '$scrypt$...' } }
    }],
    admin: { token: 'admin-123' },
    server: { tls: { certificates: [{ cert: 'server.pem', key: 'server-key.pem' }] } }
  })
  t.same(shown, {
    plugins: { 'key-auth': { header: 'x-api-key', query: 'api_key', hideCredentials: true, realm: 'api' } },
    upstreams: {
      'api-keys': { targets: [{ url: 'http://10.0.0.1:80' }], tls: { ca: 'ca.pem', cert: 'client.pem', key: '[redacted]' } },
      tokens: { targets: [{ url: 'http://[redacted]@10.0.0.2:80' }], healthCheck: { path: '/health' } }
    },
    stores: { secrets: { type: 'redis', url: 'redis://[redacted]@h:6379', password: '[redacted]', keyPrefix: '[redacted]', db: 2 } },
    routes: [{
      name: 'token-exchange',
      upstream: 'api-keys',
      plugins: {
        'key-auth': { header: 'x-api-key', store: 'keys' },
        cache: { key: { host: true, query: { include: ['page'] }, headers: ['x-tenant'] } },
        'jwt-auth': { secret: '[redacted]', keys: ['[redacted]'], maxTokenBytes: 8192, hideCredentials: true },
        'token-plugin': { clientSecret: '[redacted]', apiKey: { id: '[redacted]', value: '[redacted]' }, timeout: '1s' }
      }
    }],
    consumers: [{
      id: 'key-holder',
      metadata: { 'rate-limit': { limit: 10 }, apiToken: '[redacted]' },
      credentials: { 'key-auth': { keys: ['[redacted]'] }, 'basic-auth': { username: '[redacted]', password: '[redacted]' } }
    }],
    admin: { token: '[redacted]' },
    server: { tls: { certificates: [{ cert: 'server.pem', key: '[redacted]' }] } }
  }, 'every real secret stays hidden: credentials, the jwt secret and keys, passwords, tokens, URL userinfo, TLS key files')
  t.notMatch(JSON.stringify(shown), /pw|-123|scrypt|BEGIN/)
})

t.test('a consumer\'s metadata is free-form: every value under a secret-looking key stays hidden; a key object other than the cache\'s settings too', async t => {
  const shown = redactSecrets({
    consumers: [{ id: 'alice', metadata: { secrets: { stripe: 'sk_live_1' }, token: { value: 'tok-1' }, 'upstream-credentials': { user: 'bob', bearer: 'b-1' }, 'rate-limit': { limit: 5 } } }],
    routes: [{ name: 'r', plugins: { signer: { signing: { key: { kty: 'oct', k: 'jwk-1' } } } } }]
  })
  t.same(shown, {
    consumers: [{ id: 'alice', metadata: { secrets: { stripe: '[redacted]' }, token: { value: '[redacted]' }, 'upstream-credentials': { user: '[redacted]', bearer: '[redacted]' }, 'rate-limit': { limit: 5 } } }],
    routes: [{ name: 'r', plugins: { signer: { signing: { key: { kty: '[redacted]', k: '[redacted]' } } } } }]
  })
  t.notMatch(JSON.stringify(shown), /-1/)
})

t.test('secrets by other common names, in URL fragments and codes, and in connection strings; words alike but harmless are shown', async t => {
  const shown = redactSecrets({
    upstream: {
      pass: 'p-1', passphrase: 'pp-1', auth: 'user:a-1', bearer: 'b-1', jwt: 'eyJ-1', cookie: 'sid=c-1', sessionCookie: 'sc-1',
      signature: 's-1', hmac: 'h-1', salt: 'salt-1', pass_word: 'pw-1', basicAuth: { user: 'u', pass: 'ba-1' }
    },
    dsn: 'Server=db;Database=app;User Id=sa;Password=dsn-1;Encrypt=true',
    azure: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=ak-1;EndpointSuffix=core.windows.net',
    quoted: 'Server=db;Pwd="q-1;still secret";Timeout=5',
    callback: 'https://app.example.com/cb#access_token=f-1&token_type=bearer&state=s',
    oauth: 'https://app.example.com/cb?code=oc-1&state=xyz',
    kept: {
      passive: 'yes', bypass: { cookies: ['session'] }, authority: 'api.example.com', sessionTimeout: '30m',
      tls: { clientAuth: { ca: 'clients.pem', mode: 'require' } }, page: 'https://h.example/auth/list?page=2', text: 'a=b and c=d'
    }
  })
  t.same(shown, {
    upstream: {
      pass: '[redacted]', passphrase: '[redacted]', auth: '[redacted]', bearer: '[redacted]', jwt: '[redacted]', cookie: '[redacted]', sessionCookie: '[redacted]',
      signature: '[redacted]', hmac: '[redacted]', salt: '[redacted]', pass_word: '[redacted]', basicAuth: { user: '[redacted]', pass: '[redacted]' }
    },
    dsn: 'Server=db;Database=app;User Id=sa;Password=[redacted];Encrypt=true',
    azure: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[redacted];EndpointSuffix=core.windows.net',
    quoted: 'Server=db;Pwd=[redacted];Timeout=5',
    callback: 'https://app.example.com/cb#access_token=[redacted]&token_type=bearer&state=s',
    oauth: 'https://app.example.com/cb?code=[redacted]&state=xyz',
    kept: {
      passive: 'yes', bypass: { cookies: ['session'] }, authority: 'api.example.com', sessionTimeout: '30m',
      tls: { clientAuth: { ca: 'clients.pem', mode: 'require' } }, page: 'https://h.example/auth/list?page=2', text: 'a=b and c=d'
    }
  })
  t.notMatch(JSON.stringify(shown), /-1|secret"/)
  t.same(redactSecrets({ clientAuth: { ca: 'clients.pem', mode: 'require', password: 'x' } }), { clientAuth: { ca: '[redacted]', mode: '[redacted]', password: '[redacted]' } }, 'clientAuth with anything else is not settings alone: all of it hidden')
})

t.test('relative URLs and paths: secret-looking query and fragment values are hidden, as in an absolute URL; prose is not', async t => {
  const shown = redactSecrets({
    upstreams: { u: { targets: [{ url: 'http://10.0.0.1:80' }], healthCheck: { path: '/health?token=SECRET2&key=SECRET3' } } },
    routes: [{ name: 'r', match: { path: '/*' }, plugins: { redirect: { to: '/login?api_key=SECRET4#access_token=SECRET5' } } }],
    query: '?sig=SECRET6&page=2',
    quoted: 'redirects to "/cb#code=SECRET7" then',
    kept: ['plain text with a@b and ?token=x but no URL', 'C# and F#', 'see #token', '/search?q=token&page=2']
  })
  t.same(shown, {
    upstreams: { u: { targets: [{ url: 'http://10.0.0.1:80' }], healthCheck: { path: '/health?token=[redacted]&key=[redacted]' } } },
    routes: [{ name: 'r', match: { path: '/*' }, plugins: { redirect: { to: '/login?api_key=[redacted]#access_token=[redacted]' } } }],
    query: '?sig=[redacted]&page=2',
    quoted: 'redirects to "/cb#code=[redacted]" then',
    kept: ['plain text with a@b and ?token=x but no URL', 'C# and F#', 'see #token', '/search?q=token&page=2']
  })
  t.notMatch(JSON.stringify(shown), /SECRET/)
})

t.test('libpq connection strings, space-separated; query names ending in a secret word', async t => {
  const shown = redactSecrets({
    a: 'password=X1 dbname=d',
    b: 'host=db port=5432 user=u password=X2 dbname=app sslmode=require',
    c: "host=db password = 'X3 with spaces' dbname=app",
    d: 'postgres://h/db?sslpassword=X4&sslmode=verify-full&db_password=X5',
    e: { sslpassword: 'X6', sslkey: 'client.key', dbPassword: 'X7' },
    f: 'Server=db;Initial Catalog=My DB;Password=X8;Encrypt=true'
  })
  t.same(shown, {
    a: 'password=[redacted] dbname=d',
    b: 'host=db port=5432 user=u password=[redacted] dbname=app sslmode=require',
    c: 'host=db password=[redacted] dbname=app',
    d: 'postgres://h/db?sslpassword=[redacted]&sslmode=verify-full&db_password=[redacted]',
    e: { sslpassword: '[redacted]', sslkey: 'client.key', dbPassword: '[redacted]' },
    f: 'Server=db;Initial Catalog=My DB;Password=[redacted];Encrypt=true'
  })
  t.notMatch(JSON.stringify(shown), /X\d/)
})

t.test('names that only mention a secret are shown: a cookie to hash on or read a token from, an auth mechanism, a token type', async t => {
  t.same(redactSecrets({
    upstreams: { u: { balance: 'consistent-hash', hashOn: { cookie: 'session_id' } } },
    plugins: { 'jwt-auth': { from: [{ cookie: 'access_token' }, { header: 'authorization', scheme: 'Bearer' }] } },
    store: { url: 'mongodb://h/db?authMechanism=PLAIN&authSource=admin&auth_mechanism=PLAIN&token_type_hint=refresh_token' },
    oauth: { tokenUrl: 'https://idp.example/token', tokenType: 'bearer' }
  }), {
    upstreams: { u: { balance: 'consistent-hash', hashOn: { cookie: 'session_id' } } },
    plugins: { 'jwt-auth': { from: [{ cookie: 'access_token' }, { header: 'authorization', scheme: 'Bearer' }] } },
    store: { url: 'mongodb://h/db?authMechanism=PLAIN&authSource=admin&auth_mechanism=PLAIN&token_type_hint=refresh_token' },
    oauth: { tokenUrl: 'https://idp.example/token', tokenType: 'bearer' }
  })
  t.same(redactSecrets({
    consumers: [{ id: 'c', metadata: { upstream: { cookie: 'sid-1' } } }],
    u: 'https://h/?session_id=s-1&auth=a-1&auth_code=c-1',
    hashOn: { cookie: 'session_id', extra: { cookie: 'sid-2' } }
  }), {
    consumers: [{ id: 'c', metadata: { upstream: { cookie: '[redacted]' } } }],
    u: 'https://h/?session_id=[redacted]&auth=[redacted]&auth_code=[redacted]',
    hashOn: { cookie: 'session_id', extra: { cookie: '[redacted]' } }
  }, 'a cookie elsewhere is a value; a secret word followed by another word is still a secret')
})
