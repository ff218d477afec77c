import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// Node's HTTP/1 parser refuses a request target with bytes outside printable ASCII (400 bad_request);
// HTTP/2's :path lets them through, and the query is forwarded as sent: `GET /x?a=\xE9 HTTP/1.1` is no
// request line, and an upstream answers it with whatever it does (a bare 400 from node:http).
t.test('HTTP/2: a query with bytes outside printable ASCII is refused (400 bad_request), as over HTTP/1.1', async t => {
  // Records the request lines as sent: a node:http upstream would refuse the bad ones before any handler.
  const lines: string[] = []
  const up = createServer(socket => {
    let head = ''
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      lines.push(head.slice(0, head.indexOf('\r\n')))
      head = head.slice(end + 4)
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => up.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => up.close(() => resolve())))
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(up.address() as AddressInfo).port}" } ] }
routes:
  - { name: any, match: { path: /* }, upstream: up }
`)
  const session = await connect({ h2c: true })
  for (const path of ['/x?a=\xE9\xFF', '/x?\x80', '/x?a=1&b=\xA0', '/x?caf\u00E9']) {
    const res = await h2Request(session, { ':path': path })
    t.equal(res.status, 400, JSON.stringify(path))
    t.match(JSON.parse(res.body.toString()), { error: 'bad_request' }, JSON.stringify(path))
  }
  const fine = await h2Request(session, { ':path': '/x?a="<>"&b=%E9' })
  t.equal(fine.status, 200, 'printable ASCII is a query, quotes and angle brackets too')
  t.same(lines, ['GET /x?a="<>"&b=%E9 HTTP/1.1'], 'nothing else reached the upstream')
})
