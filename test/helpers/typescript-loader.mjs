// How test processes (and the CLIs they spawn) run the TypeScript sources: Node 22.18+ and 24
// strip the types themselves; older Nodes (20, 22.12) get typescript-hooks.mjs.
import { register } from 'node:module'

if (!process.features.typescript) {
  // The stripped code carries inline source maps: stack traces name the .ts lines.
  process.setSourceMapsEnabled(true)
  register('./typescript-hooks.mjs', import.meta.url)
}
