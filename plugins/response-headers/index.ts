import { definePlugin, type PluginCheckRoute, type PluginConfigProblem } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits, type HeaderEdits } from '../shared/header-edits.ts'
import { addVary } from '../shared/vary.ts'

// Node writes a Date on every response that has none (RFC 9110 6.6.1: a server with a clock sends one).
const NO_DATE = 'Date cannot be removed: the gateway writes the current date on every response that has none (RFC 9110 6.6.1)'
// Vary names what the response depends on: a name dropped lets a cache in front serve it to clients
// it does not fit (gzip to one that takes none); a name added never does. Built-ins that add to it:
const ADD_TO_VARY = new Set(['compress', 'cors'])

const isVary = (name: string): boolean => name.toLowerCase() === 'vary'

function check (config: HeaderEdits, route: PluginCheckRoute | undefined): PluginConfigProblem[] {
  const problems: PluginConfigProblem[] = []
  config.remove?.forEach((name, i) => { if (name.toLowerCase() === 'date') problems.push({ path: ['remove', i], message: NO_DATE }) })
  const adders = [...new Set(route?.plugins.filter(p => ADD_TO_VARY.has(p.name)).map(p => p.name))]
  if (adders.length === 0) return problems
  const dropped = `Vary cannot be removed or replaced on a route with ${adders.join(' and ')}, which add to it: a cache in front ` +
    'would serve the response to clients it does not fit; set: { vary: ... } adds names to it'
  config.remove?.forEach((name, i) => { if (isVary(name)) problems.push({ path: ['remove', i], message: dropped }) })
  for (const [from, to] of Object.entries(config.rename ?? {})) {
    if (isVary(from) || isVary(to)) problems.push({ path: ['rename', from], message: dropped })
  }
  return problems
}

/**
 * Edits the headers sent to the client: remove, rename, set (in that order). Priority 5000, above
 * every built-in: a plugin's reply goes through the response hooks of the plugins before it only,
 * so outermost, the edits apply to every answer of the route (a 401, a 429, a cache hit, a CORS
 * preflight), and after every other response hook (the cache stores the response unedited).
 * A set of Vary adds its names to those there (compress's, cors's, the upstream's), never replaces them.
 */
export default definePlugin({
  name: 'response-headers',
  priority: 5000,
  schema: HeaderEditsSchema,
  check,
  setup (config) {
    const set = Object.entries(config.set ?? {})
    const edit = compileHeaderEdits({ ...config, set: Object.fromEntries(set.filter(([name]) => !isVary(name))) })
    const vary = set.filter(([name]) => isVary(name)).flatMap(([, value]) => value.split(','))
      .map(name => name.trim().toLowerCase()).filter(name => name !== '')
    if (vary.length === 0) return { onResponse (res) { edit(res.headers) } }
    return {
      onResponse (res) {
        edit(res.headers)
        for (const name of vary) addVary(res.headers, name)
      }
    }
  }
})
