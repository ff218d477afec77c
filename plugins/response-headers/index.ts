import { definePlugin } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits } from '../shared/header-edits.ts'

/** Edits the headers sent to the client: remove, rename, set (in that order). */
export default definePlugin({
  name: 'response-headers',
  priority: 50,
  schema: HeaderEditsSchema,
  setup (config) {
    const edit = compileHeaderEdits(config)
    return { onResponse (res) { edit(res.headers) } }
  }
})
