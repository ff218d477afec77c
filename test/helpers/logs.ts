import { until } from './wait.ts'

type Line = Record<string, unknown>

/**
 * The first log line matching `fields` (every given key equal), waiting for it a little: access-log
 * lines are written when the response closes, which can be after the client has read it.
 */
export async function waitForLog (lines: readonly Line[], fields: Line, maxMs = 5_000): Promise<Line | undefined> {
  const matches = (l: Line) => Object.entries(fields).every(([k, v]) => l[k] === v)
  await until(() => lines.some(matches), maxMs)
  return lines.find(matches)
}
