import { definePlugin, Type } from 'portcullis'

export default definePlugin({
  name: 'add-tenant',
  priority: 810,                                  // request transforms band
  schema: Type.Object({ header: Type.String({ default: 'x-tenant' }) }, { additionalProperties: false }),
  setup (config, { log }) {                       // once per route, at config load
    log.debug({ header: config.header }, 'add-tenant ready')   // log names the route and plugin
    return {
      onRequest (req) {                           // request phase
        if (req.clientHeaders.authorization === undefined) return { status: 401, body: { error: 'unauthorized' } }
        req.headers[config.header] = 'acme'       // headers sent upstream
      },
      onResponse (res) { res.headers['x-tenant'] = 'acme' },   // response phase
      dispose () {}                               // when the config is replaced or the gateway stops
    }
  }
})
