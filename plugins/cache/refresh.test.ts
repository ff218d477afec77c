import t from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { configFile, startFromFile } from '../../test/reload/helpers.ts'

t.test('a background revalidation (stale-while-revalidate) never stores a body delimited by the connection closing', async t => {
  // Per path: a stale entry (Age past max-age, within stale-while-revalidate); then an HTTP/1.0
  // answer without Content-Length, ended by a reset (/reset) or a clean close (/fin); then a whole one.
  const served = new Map<string, number>()
  const sockets = new Set<Socket>()
  /** Per path, the connection of the close-delimited answer, closed. */
  const ended = new Map<string, Promise<void>>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.once('data', (data: Buffer) => {
      const path = data.toString('latin1').split(' ')[1] as string
      const n = (served.get(path) ?? 0) + 1
      served.set(path, n)
      if (n === 1) {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=1, stale-while-revalidate=60\r\nAge: 5\r\nETag: "v1"\r\nConnection: close\r\n\r\nv1')
      } else if (n === 2) {
        ended.set(path, new Promise(resolve => socket.once('close', () => resolve())))
        socket.write('HTTP/1.0 200 OK\r\nCache-Control: max-age=60\r\nETag: "v2"\r\n\r\npart1;')
        setTimeout(() => {
          socket.write('part2;')
          setTimeout(() => path === '/reset' ? socket.resetAndDestroy() : socket.end(), 20)
        }, 20)
      } else {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\nETag: "v3"\r\nConnection: close\r\n\r\nv3')
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(server.address() as AddressInfo).port}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: {} } }
`)
  t.teardown(() => gw.close())
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return { status: String(res.headers['cache-status']), body: await res.body.text() }
  }

  for (const path of ['/reset', '/fin']) {
    // ttl: max-age 1 less Age 5, less the time the answer took and the time since (a second more on a loaded machine).
    t.match((await get(path)).status, /; stored; ttl=-[45]$/, `${path}: stored stale`)
    const stale = await get(path)
    t.equal(stale.body, 'v1')
    t.match(stale.status, /^Portcullis; hit; ttl=-[4-6]$/, `${path}: served stale, revalidated in the background`)
    t.ok(await until(() => ended.has(path)), `${path}: revalidated`)
    await ended.get(path)
    // Each request that finds the stale entry still there is answered from it: the first other answer tells what the revalidation did.
    let next = stale
    for (let i = 0; i < 200 && next.body === 'v1'; i++) {
      await new Promise(resolve => setTimeout(resolve, 10))
      next = await get(path)
    }
    t.same([next.body, fresh(next.status)], ['v3', 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60'], `${path}: the cut body was not stored, and the stale entry it replaced is gone`)
  }
})

t.test('the route\'s stale windows are read when an entry is served: a reload that removes staleIfError ends it for entries stored before', async t => {
  let failing = false
  const up = await startUpstream((req, res) => {
    req.resume()
    if (failing) res.writeHead(503, { 'content-length': 4 }).end('down')
    else res.writeHead(200, { 'cache-control': 'max-age=1', age: '5', etag: '"e"', 'content-length': 2 }).end('v1')
  })
  t.teardown(() => up.close())
  const yaml = (sie: string, swr: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: sie, match: { path: /sie }, upstream: up, plugins: { cache: ${sie} } }
  - { name: swr, match: { path: /swr }, upstream: up, plugins: { cache: ${swr} } }
`
  const cf = await configFile(yaml('{ staleIfError: 1h }', '{ staleWhileRevalidate: 1h }'))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
  }
  t.match((await get('/sie')).cacheStatus, /; stored; ttl=-[45]$/)
  t.match((await get('/swr')).cacheStatus, /; stored; ttl=-[45]$/)
  failing = true
  t.match((await get('/sie')).cacheStatus, /detail=stale-if-error$/, 'stale-if-error from the route\'s config')
  t.match((await get('/swr')).cacheStatus, /^Portcullis; hit; ttl=-\d+$/, 'stale-while-revalidate from the route\'s config')
  await cf.write(yaml('{}', '{}'))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  const sie = await get('/sie')
  t.same([sie.status, sie.body, sie.cacheStatus], [503, 'down', 'Portcullis; fwd=stale; fwd-status=503; detail=status'], 'staleIfError removed: the error, not the stale entry')
  t.equal((await get('/swr')).cacheStatus, 'Portcullis; fwd=stale; fwd-status=503; detail=status', 'staleWhileRevalidate removed: revalidated before use')
})

t.test('a background revalidation never stores a response with a transfer coding other than chunked (refused as on the proxied path)', async t => {
  // A stale entry; then `Transfer-Encoding: gzip, chunked` (undici takes off the chunks only: the
  // rest would be stored and served as raw gzip, nothing saying so); then a whole answer.
  let served = 0
  const server = createServer(socket => {
    socket.on('error', () => {})
    socket.once('data', () => {
      served++
      if (served === 1) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=1, stale-while-revalidate=60\r\nAge: 5\r\nConnection: close\r\n\r\nv1')
      else if (served === 2) {
        const gz = gzipSync('coded')
        socket.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nCache-Control: max-age=100\r\nConnection: close\r\n\r\n${gz.length.toString(16)}\r\n${gz.toString('latin1')}\r\n0\r\n\r\n`, 'latin1')
      } else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\nv3')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(server.address() as AddressInfo).port}" } ], passive: false }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: {} } }
`)
  t.teardown(() => gw.close())
  const get = async () => {
    const res = await request(`${gw.url}/coded`)
    return { body: await res.body.text(), status: String(res.headers['cache-status']) }
  }
  t.match((await get()).status, /; stored; /, 'stored stale')
  const bodies = new Set<string>()
  let next = await get()
  for (let i = 0; i < 200 && next.body !== 'v3'; i++) {
    bodies.add(next.body)
    await new Promise(resolve => setTimeout(resolve, 10))
    next = await get()
  }
  t.same([...bodies], ['v1'], 'the stale entry served meanwhile, never the coded body')
  t.equal(next.body, 'v3', 'the next revalidation stored the whole answer')
  t.ok(served >= 3, 'the coded answer was not stored')
})
