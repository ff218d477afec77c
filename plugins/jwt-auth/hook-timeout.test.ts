import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startFromFile } from '../../test/reload/helpers.ts'

// A request may wait within its onRequest for the key set's fetch (after the discovery document's,
// with an issuer), up to jwks.timeout each; server.pluginTimeout cuts every async hook (504). A
// config where the fetch may outlast the hook would answer 504 where jwt-auth means its own
// failure rule (503 auth_unavailable): refused at setup, naming both settings.
const dir = t.testdir({})
const file = join(dir, 'gateway.yaml')
/** A gateway whose route's jwt-auth reads keys from `source`, with `jwks.timeout` `timeout` if given, under server.pluginTimeout `pluginTimeout`. */
const start = (source: string, timeout?: string, pluginTimeout = '2s') => {
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: ${pluginTimeout}
upstreams:
  a: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: a, plugins: { jwt-auth: { ${source}${timeout === undefined ? '' : `, jwks: { timeout: ${timeout} }`} } } }
`)
  return startFromFile(file)
}

t.test('jwks.timeout that may reach server.pluginTimeout: no start, the reason naming both', async t => {
  await t.rejects(start('jwksUri: "http://127.0.0.1:1/jwks"', '2s'), { code: 'PCL_ERR_PLUGIN_SETUP', plugin: 'jwt-auth', message: /jwks\.timeout \(2000 ms\) must be less than server\.pluginTimeout \(2000 ms\)/ })
  await t.rejects(start('issuer: "http://127.0.0.1:1"', '1s'), { message: /jwks\.timeout \(1000 ms, twice with discovery\) must be less than server\.pluginTimeout/ }, 'with discovery, twice')
  const gw = await start('jwksUri: "http://127.0.0.1:1/jwks"', '1500ms')
  t.ok(gw.url, 'below it: starts')
  await gw.close()
})

t.test('left out, jwks.timeout fits a short server.pluginTimeout: the gateway starts', async t => {
  const gw = await start('issuer: "http://127.0.0.1:1"')
  t.ok(gw.url, 'started (the default 5 s would have been refused)')
  await gw.close()
})

t.test('left out, jwks.timeout worked out below its floor (100ms) from a very short server.pluginTimeout: no start, the reason naming both', async t => {
  /**
   * Why the gateway did not start; undefined if it did (closed at once). The setup itself runs under
   * the short pluginTimeout: one cut by it (a loaded machine; CI saw it at 100 ms) is tried again.
   */
  const refusal = async (...args: Parameters<typeof start>): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      try { await (await start(...args)).close() } catch (err) {
        if (attempt < 10 && /setup did not finish within/.test((err as Error).message)) continue
        return err
      }
      return undefined
    }
  }
  // 150ms with discovery left 74 ms a fetch: a provider answering in 90 ms gave 503 for ever.
  t.match(await refusal('issuer: "http://127.0.0.1:1"', undefined, '150ms'), {
    code: 'PCL_ERR_PLUGIN_SETUP',
    plugin: 'jwt-auth',
    message: /server\.pluginTimeout \(150 ms\) leaves jwks\.timeout, left out, 74 ms \(two fetches with discovery\): below its floor of 100ms, .*; raise server\.pluginTimeout above 200 ms$/
  })
  t.match(await refusal('jwksUri: "http://127.0.0.1:1/jwks"', undefined, '100ms'), { message: /server\.pluginTimeout \(100 ms\) leaves jwks\.timeout, left out, 99 ms: below its floor of 100ms, .*above 100 ms$/ })
  t.equal(await refusal('issuer: "http://127.0.0.1:1"', undefined, '201ms'), undefined, 'just above it: starts (100 ms a fetch)')
})
