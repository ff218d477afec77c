import t from 'tap'
import { hostAndPort } from './spans.ts'

// server.address and server.port of the server span come from the client's Host header.
t.test('Host header values split into address and port', async t => {
  t.same(hostAndPort('api.example.com'), { address: 'api.example.com', port: undefined })
  t.same(hostAndPort('api.example.com:8443'), { address: 'api.example.com', port: 8443 })
  t.same(hostAndPort('127.0.0.1:80'), { address: '127.0.0.1', port: 80 })
  t.same(hostAndPort('[::1]:8080'), { address: '::1', port: 8080 })
  t.same(hostAndPort('[2001:db8::1]'), { address: '2001:db8::1', port: undefined })
  t.same(hostAndPort('a:b:c'), { address: 'a:b:c', port: undefined }, 'anything else is kept whole')
  t.same(hostAndPort('x[y]'), { address: 'x[y]', port: undefined }, 'brackets are taken off only around the whole address')
  t.same(hostAndPort('[ab]c'), { address: '[ab]c', port: undefined })
})
