import t, { type Test } from 'tap'
import { constants } from 'node:http2'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { once } from 'node:events'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { frame, startH2Gateway } from '../helpers/http2.ts'

// A connection cut for abuse (rapid reset, settings flood) ends with GOAWAY ENHANCE_YOUR_CALM, and
// nothing after it: a GOAWAY NO_ERROR sent last (the session's destroy after the goaway) read as a
// graceful shutdown to the client. Node's client destroys its session on the first GOAWAY with an
// error, so the frames are read off a raw connection.

const LIMITS = '{ h2c: { listen: { host: 127.0.0.1, port: 0 } }, rapidReset: { burst: 5, perSecond: 1 }, settingsFlood: { burst: 5, perSecond: 1 } }'

const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))])
// GET / (http or https), :authority localhost: HPACK static entries and a literal.
const getRoot = (stream: number, h2c: boolean): Buffer =>
  frame(1, 0x5, stream, Buffer.from([0x82, h2c ? 0x86 : 0x87, 0x84, 0x01, 9, ...Buffer.from('localhost')]))
const floods = {
  'settings flood': (): Buffer => Buffer.concat(Array.from({ length: 30 }, () => frame(4, 0, 0, Buffer.alloc(0)))),
  // HEADERS then RST_STREAM CANCEL, stream after stream.
  'rapid reset': (h2c: boolean): Buffer => Buffer.concat(Array.from({ length: 30 }, (_, i) => [getRoot(2 * i + 1, h2c), frame(3, 0, 2 * i + 1, Buffer.from([0, 0, 0, 8]))]).flat())
}

/**
 * The error codes of the GOAWAY frames the gateway sends on a connection that floods it, in order,
 * once it is closed; `opening` is sent first, and the flood once `ready` resolves.
 */
async function goawaysAfter (t: Test, port: number, h2c: boolean, flood: Buffer, opening = Buffer.alloc(0), ready?: Promise<unknown>): Promise<number[]> {
  const socket: Socket = h2c ? netConnect(port, '127.0.0.1') : tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, h2c ? 'connect' : 'secureConnect')
  let pending = Buffer.alloc(0)
  const codes: number[] = []
  socket.on('data', (c: Buffer) => {
    pending = Buffer.concat([pending, c])
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      const length = pending.readUIntBE(0, 3)
      if (pending[3] === 7) codes.push(pending.readUInt32BE(9 + 4))
      pending = pending.subarray(9 + length)
    }
  })
  socket.write(Buffer.concat([PREFACE, opening]))
  await ready
  socket.write(flood)
  await once(socket, 'close')
  return codes
}

for (const [name, flood] of Object.entries(floods)) {
  for (const h2c of [true, false]) {
    t.test(`${name} (${h2c ? 'h2c' : 'TLS'}): the last GOAWAY the client gets is ENHANCE_YOUR_CALM`, async t => {
      const up = await startUpstream((_req, res) => res.end('ok'))
      t.teardown(() => up.close())
      const { gw } = await startH2Gateway(t, LIMITS, catchAllYaml(up.url))
      const port = Number(new URL(h2c ? gw.h2cUrl as string : gw.url).port)
      const codes = await goawaysAfter(t, port, h2c, flood(h2c))
      t.ok(gw.logs.some(l => l.level === 40 && l.reason === name.replace(' ', '_')), 'cut for it')
      t.ok(codes.length > 0, `GOAWAY sent: ${codes.join(', ')}`)
      t.equal(codes.at(-1), constants.NGHTTP2_ENHANCE_YOUR_CALM, 'the last one says ENHANCE_YOUR_CALM')
      t.notOk(codes.includes(constants.NGHTTP2_NO_ERROR), 'none says NO_ERROR')
    })
  }
}

// Streams in flight when the cut comes: destroy() resets them, and over TLS the socket was torn down
// before the GOAWAY was flushed (h2c got it; the TLS client got none).
for (const h2c of [true, false]) {
  t.test(`settings flood with streams in flight (${h2c ? 'h2c' : 'TLS'}): the last GOAWAY is ENHANCE_YOUR_CALM`, async t => {
    let arrived = 0
    let allArrived: () => void = () => {}
    const three = new Promise<void>(resolve => { allArrived = resolve })
    const held: Array<() => void> = []
    const up = await startUpstream((_req, res) => {
      held.push(() => res.end('late'))
      if (++arrived === 3) allArrived()
    })
    t.teardown(() => { for (const answer of held) answer(); return up.close() })
    const { gw } = await startH2Gateway(t, LIMITS, catchAllYaml(up.url))
    const port = Number(new URL(h2c ? gw.h2cUrl as string : gw.url).port)
    const opening = Buffer.concat([1, 3, 5].map(id => getRoot(id, h2c)))
    const codes = await goawaysAfter(t, port, h2c, floods['settings flood'](), opening, three)
    t.ok(gw.logs.some(l => l.level === 40 && l.reason === 'settings_flood'), 'cut for it')
    t.ok(codes.length > 0, `GOAWAY sent: ${codes.join(', ')}`)
    t.equal(codes.at(-1), constants.NGHTTP2_ENHANCE_YOUR_CALM, 'the last one says ENHANCE_YOUR_CALM')
    t.notOk(codes.includes(constants.NGHTTP2_NO_ERROR), 'none says NO_ERROR')
    t.same(gw.logs.filter(l => (l.level as number) >= 50), [], 'no error logged')
  })
}
