import type { PipelineStep } from './pipeline.ts'

/** `cors (3000, global)`: a plugin as the CLI prints it (the source only when it is the top level). */
export const formatStep = (s: PipelineStep): string => `${s.name} (${s.priority}${s.source === 'global' ? ', global' : ''})`
