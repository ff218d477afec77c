import { definePlugin, Type } from '../../src/index.ts'

/** A user plugin for worker tests: POST /plugins/admin-log/call logs "admin call" in each worker it runs in, and answers 200. */
export default definePlugin({
  name: 'admin-log',
  priority: 10,
  schema: Type.Object({}, { additionalProperties: false }),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('POST', '/call', () => { ctx.log.info('admin call'); return { body: { ok: true } } })
      return {}
    })
    return {}
  }
})
