import t from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { logThrown } from '../../src/plugins/thrown.ts'

t.test('errors sharing causes and aggregated errors are shown once each, 50 at most: the log line stays small', async t => {
  let line = ''
  const log = pino(new Writable({ write (chunk: Buffer, _enc, cb) { line += chunk.toString(); cb() } }))
  // Ten errors, each aggregating all ten and caused by the next: walked naively, ~36,000 nodes.
  const errors = Array.from({ length: 10 }, (_, i) => new Error(`${'m'.repeat(2000)} ${i}`))
  errors.forEach((e, i) => Object.assign(e, { errors, cause: errors[(i + 1) % 10] }))
  logThrown(log, 'error', 'plugin failed', new AggregateError(errors, 'top'), { plugin: 'p' })
  t.ok(line.length < 1_000_000, `one line of ${line.length} bytes`)
  const logged = JSON.parse(line) as { msg: string, plugin: string, err: { message: string } }
  t.match(logged, { msg: 'plugin failed', plugin: 'p', err: { message: /^top/ } })
  t.ok(line.includes('m 9'), 'each error is shown')
})
