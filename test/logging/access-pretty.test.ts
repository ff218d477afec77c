import t from 'tap'
import { accessPretty } from '../../src/logging/access-pretty.ts'

// Pretty access lines go to a terminal: nothing a client sends may move its cursor, colour it or
// break the line; a plugin's own `request` line is not taken for one (its fields would vanish).

const line = (fields: Record<string, unknown>): string => `${JSON.stringify({ level: 30, time: Date.now(), pid: 1, ...fields })}\n`

t.test('an access line is one line, what a client chose shown quoted and escaped', async t => {
  // U+009B (CSI) and U+0085 (NEL) arrive over HTTP/2's :path; JSON.stringify leaves them, as U+2028 and bidi overrides.
  const shown = accessPretty(line({ method: 'GET', path: '/a\u009b31mRED\u0085\u2028\u202e', status: 400, requestId: 'r1', error: 'bad_path', msg: 'request rejected' }))
  t.ok(shown !== undefined, 'rendered by hand')
  t.equal(shown?.split('\n').length, 2, 'one line')
  t.notMatch(shown ?? '', /[\u0080-\u009f\u2028\u2029\u202a-\u202e]/, 'no C1 control, line separator or bidi override left')
  t.match(shown ?? '', '\\u009b31mRED\\u0085\\u2028\\u202e', 'escaped as \\uXXXX')
})

t.test('a plugin\'s info line whose message is "request" keeps its fields (pino-pretty\'s)', async t => {
  t.equal(accessPretty(line({ plugin: 'audit', user: 'alice', action: 'delete', msg: 'request' })), undefined)
})
