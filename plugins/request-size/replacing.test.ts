import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { replacedTopLevel } from '../../src/config/check-plugins.ts'

// A route writing a limit as the default's value (`maxBody: 1MiB`) raises it on purpose, as one
// writing `1048576` does: only a limit left out is warned of, though both come to the same value.
t.test('a limit the route writes is never warned of, even as the default\'s value; one it leaves out is', async t => {
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  request-size: { maxBody: 100, maxUrl: 1000, maxHeaders: 10, maxHeaderBytes: 1KiB }
routes:
  - { name: as-default, match: { path: /a }, upstream: u, plugins: { request-size: { maxBody: 1MiB, maxUrl: 8192, maxHeaders: 100 } } }
  - { name: in-bytes, match: { path: /b }, upstream: u, plugins: { request-size: { maxBody: 1048576, maxUrl: 1000, maxHeaders: 10, maxHeaderBytes: 16384 } } }
  - { name: left-out, match: { path: /c }, upstream: u, plugins: { request-size: { maxUrl: 500 } } }
`, 'gw.yaml', {})
  t.same(replacedTopLevel(loaded.config, loaded.plugins).map(w => `${w.route}: ${w.lost.join('; ')}`), [
    'as-default: maxHeaderBytes goes up from 1KiB to 16KiB (the default)',
    'left-out: maxBody goes up from 100 to 1MiB (the default); maxHeaders goes up from 10 to 100 (the default); maxHeaderBytes goes up from 1KiB to 16KiB (the default)'
  ])
})
