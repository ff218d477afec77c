import { createSocket as udpSocket } from 'node:dgram'

/** What the fake server does with an A or AAAA question for a name. */
export type FakeAnswer = { a: string } | 'nxdomain' | 'none' | { a: string, afterMs: number }

/**
 * A DNS server on 127.0.0.1 (UDP) answering A questions as `answer` says: an address, NXDOMAIN, or
 * nothing ever (a DNS that does not answer); AAAA questions get no records. The names asked, in order.
 */
export async function fakeDns (answer: (name: string) => FakeAnswer): Promise<{ server: string, asked: string[], close: () => Promise<void> }> {
  const socket = udpSocket('udp4')
  const asked: string[] = []
  const timers = new Set<NodeJS.Timeout>()
  socket.on('message', (query, from) => {
    const { name, end, type } = question(query)
    asked.push(name)
    const said = answer(name)
    if (said === 'none') return
    const nx = said === 'nxdomain'
    const withA = !nx && type === 1
    // Header: the query's id, QR + RD + RA, RCODE 3 (NXDOMAIN) or 0; one question, 0 or 1 answer.
    const header = Buffer.from([query[0] as number, query[1] as number, 0x81, nx ? 0x83 : 0x80, 0, 1, 0, withA ? 1 : 0, 0, 0, 0, 0])
    const parts = [header, query.subarray(12, end)]
    if (withA) {
      // A pointer to the question's name, type A, class IN, TTL 1, 4 bytes of address.
      parts.push(Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, ...said.a.split('.').map(Number)]))
    }
    const send = () => socket.send(Buffer.concat(parts), from.port, from.address)
    if (typeof said === 'object' && 'afterMs' in said) {
      const timer = setTimeout(() => { timers.delete(timer); send() }, said.afterMs)
      timers.add(timer)
    } else send()
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  return {
    server: `127.0.0.1:${socket.address().port}`,
    asked,
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      await new Promise<void>(resolve => socket.close(() => resolve()))
    }
  }
}

/** The question's name, where it ends (past type and class) and its type. */
function question (query: Buffer): { name: string, end: number, type: number } {
  const labels: string[] = []
  let at = 12
  for (let length = query[at] as number; length > 0; length = query[at] as number) {
    labels.push(query.subarray(at + 1, at + 1 + length).toString('latin1'))
    at += 1 + length
  }
  return { name: labels.join('.').toLowerCase(), end: at + 5, type: query.readUInt16BE(at + 1) }
}
