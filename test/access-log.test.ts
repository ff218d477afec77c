import t from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import { AccessLog, type AccessLogFields } from '../src/logging/access-log.ts'

function capture (level = 'info') {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _e, cb) { lines.push(...chunk.toString().split('\n').filter(l => l !== '')); cb() } })
  return { log: pino({ level, base: { pid: 42 } }, stream).child({ route: 'r"1', upstream: 'u\\1' }), lines }
}

const fields: AccessLogFields = {
  target: 'http://127.0.0.1:3001', tries: 2, method: 'GET', path: '/a"b/\u00e9\u0001', protocol: 'HTTP/2', status: 200,
  durationMs: 1.25, bytes: 1024, requestId: 'abc-1', clientIp: '::1', consumer: 'mobile-app', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', reqHeaders: undefined, resHeaders: undefined
}

t.test('the hand-written line is what pino writes for the same fields', async t => {
  for (const f of [fields, { ...fields, target: undefined, tries: undefined, consumer: undefined }]) {
    const ours = capture()
    new AccessLog(ours.log).write(f)
    const theirs = capture()
    theirs.log.info(f, 'request')
    const strip = (line: string) => line.replace(/"time":\d+/, '"time":0')
    t.equal(ours.lines.length, 1)
    t.equal(strip(ours.lines[0] as string), strip(theirs.lines[0] as string), 'same keys, order and escaping')
  }
})

t.test('below the logger level nothing is written', async t => {
  const { log, lines } = capture('warn')
  new AccessLog(log).write(fields)
  t.same(lines, [])
})

t.test('lines with headers go through pino, whose redaction they need', async t => {
  const lines: string[] = []
  const sink = new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString().trim()); cb() } })
  const log = pino({ redact: { paths: ['reqHeaders.authorization'], censor: '[redacted]' } }, sink)
  new AccessLog(log).write({ ...fields, reqHeaders: { authorization: 'Bearer secret' } })
  t.equal(lines.length, 1)
  t.notOk(lines[0]?.includes('secret'), 'credential not written')
  t.match(JSON.parse(lines[0] as string), { msg: 'request', reqHeaders: { authorization: '[redacted]' } })
})
