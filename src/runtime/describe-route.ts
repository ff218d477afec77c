import type { CompiledRoute } from './compile-route.ts'
import type { PipelineStep } from '../plugins/pipeline.ts'

/** A compiled route as people read it (`portcullis routes`, the admin API's GET /routes). */
export interface RouteDescription {
  readonly name: string
  /** Host patterns as written (`api.example.com`, `*.example.com`); empty means any host. */
  readonly hosts: string[]
  readonly path: string
  /** Undefined means any method. */
  readonly methods: string[] | undefined
  readonly headers: Record<string, string>
  readonly upstream: string
  readonly targets: string[]
  /** Plugins in the order their request hooks run, with their priority and where their config came from. */
  readonly plugins: readonly PipelineStep[]
  readonly websocket: boolean
}

export function describeRoute (r: CompiledRoute): RouteDescription {
  return {
    name: r.name,
    hosts: r.hosts.map(h => h.kind === 'exact' ? h.host : '*' + h.suffix),
    path: r.path.source,
    methods: r.methods === undefined ? undefined : [...r.methods],
    headers: Object.fromEntries(r.headers),
    upstream: r.upstream.name,
    targets: r.upstream.targets.map(t => t.url),
    plugins: r.pipeline.steps,
    websocket: r.websocket
  }
}
