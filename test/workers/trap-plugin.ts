import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { definePlugin, Type } from '../../src/index.ts'

/**
 * A user plugin for worker tests. While the file `file` exists, its setup, in the worker of index
 * `worker` (in every worker without it), fails (`fail`) or waits (logging "held setup begins", then
 * "held setup ends" once the file is gone).
 */
export default definePlugin({
  name: 'trap',
  priority: 10,
  schema: Type.Object({ file: Type.String(), worker: Type.Optional(Type.Integer()), fail: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  async setup (config, ctx) {
    if (config.worker !== undefined && Number(process.env.PORTCULLIS_WORKER_INDEX) !== config.worker) return {}
    if (!existsSync(config.file)) return {}
    if (config.fail === true) throw new Error('the trap is closed')
    ctx.log.info('held setup begins')
    while (existsSync(config.file)) await sleep(20)
    ctx.log.info('held setup ends')
    return {}
  }
})
