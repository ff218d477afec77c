const API = new URL('../../src/index.ts', import.meta.url).href

/**
 * The text of a user plugin module (.mjs) named `name`, its config a secret `apiKey` and a `mode`
 * saying which of its `hooks` (definePlugin's check, warnings, setup... as source text) quote it.
 */
export const quotingPlugin = (name: string, hooks: string): string => `import { definePlugin, Type } from '${API}'
export default definePlugin({
  name: '${name}', priority: 10,
  schema: Type.Object({ apiKey: Type.String(), mode: Type.String() }),
${hooks}
})
`

/** gatewayYaml's routes: `r`, to upstream `a`, using plugin `name` in `mode`, its apiKey ${VENDOR_API_KEY}. */
export const quotingRoute = (name: string, mode: string): string =>
  `  - name: r\n    match: { path: /r }\n    upstream: a\n    plugins:\n      ${name}: { apiKey: "\${VENDOR_API_KEY}", mode: ${mode} }`
