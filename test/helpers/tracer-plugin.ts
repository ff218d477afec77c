import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const INDEX = new URL('../../src/index.ts', import.meta.url).href
const EVENTS = 'portcullis.test.pluginEvents'

/** What tracer plugins did at load and close: "setup <plugin> <route>", "dispose <plugin> <route>". */
export function pluginEvents (): string[] {
  const g = globalThis as Record<symbol, string[] | undefined>
  return (g[Symbol.for(EVENTS)] ??= [])
}

/**
 * Writes `<dir>/<name>.ts`, a user plugin (definePlugin) that appends its name to the x-trace header
 * in both phases. Its route config can make it async, reply with a status, fail in a phase or in
 * its body stream (at its end, or at its first chunk), upper-case the response body through pipeThrough, or set an invalid response header.
 */
export function writeTracerPlugin (dir: string, name: string, priority: number): string {
  const file = join(dir, `${name}.ts`)
  writeFileSync(file, `
import { Transform } from 'node:stream'
import { definePlugin, Type } from ${JSON.stringify(INDEX)}

const g = globalThis as Record<symbol, string[] | undefined>
const events = (g[Symbol.for(${JSON.stringify(EVENTS)})] ??= [])
const later = () => new Promise(resolve => setTimeout(resolve, 5))
const append = (h: Record<string, unknown>, value: string) => { h['x-trace'] = h['x-trace'] === undefined ? value : h['x-trace'] + ',' + value }
const upperCase = () => new Transform({ transform (chunk, _enc, cb) { cb(null, chunk.toString().toUpperCase()) } })

export default definePlugin({
  name: ${JSON.stringify(name)},
  priority: ${priority},
  schema: Type.Object({
    async: Type.Optional(Type.Boolean()),
    reply: Type.Optional(Type.Integer()),
    fail: Type.Optional(Type.Union([Type.Literal('request'), Type.Literal('response'), Type.Literal('stream'), Type.Literal('stream-start')])),
    upper: Type.Optional(Type.Boolean()),
    badHeader: Type.Optional(Type.Boolean()),
    badRequestHeader: Type.Optional(Type.Boolean())
  }, { additionalProperties: false }),
  setup (config, ctx) {
    events.push('setup ${name} ' + ctx.routeName)
    const onRequest = (req: any) => {
      if (config.fail === 'request') throw new Error('${name} failed on request')
      append(req.headers, ${JSON.stringify(name)})
      if (config.badRequestHeader === true) req.headers['x-bad'] = 'line\\nbreak'
      if (config.reply !== undefined) return { status: config.reply, headers: { 'X-Seen': req.headers['x-trace'], 'Content-Type': 'application/problem+json' }, body: { error: 'denied' } }
    }
    const onResponse = (res: any) => {
      if (config.fail === 'response') throw new Error('${name} failed on response')
      append(res.headers, ${JSON.stringify(name)})
      if (config.badHeader === true) res.headers['x-bad'] = 'line\\nbreak'
      if (config.upper === true) { res.headers['content-length'] = undefined; res.pipeThrough(upperCase()) }
      if (config.fail === 'stream') { res.headers['content-length'] = undefined; res.pipeThrough(new Transform({ transform (chunk, _enc, cb) { cb(null, chunk) }, flush (cb) { cb(new Error('${name} failed in its body stream')) } })) }
      if (config.fail === 'stream-start') res.pipeThrough(new Transform({ transform (_chunk, _enc, cb) { cb(new Error('${name} failed at its first chunk')) } }))
    }
    return {
      onRequest: config.async === true ? async (req: any) => { await later(); return onRequest(req) } : onRequest,
      onResponse: config.async === true ? async (res: any) => { await later(); onResponse(res) } : onResponse,
      dispose () { events.push('dispose ${name} ' + ctx.routeName) }
    }
  }
})
`)
  return file
}
