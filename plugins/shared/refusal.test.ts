import t from 'tap'
import { refusal } from './refusal.ts'

t.test('a refusal in the gateway\'s error format; connection: close only when asked', async t => {
  t.same(refusal(403, 'ip_denied', 'not from here', 'req-1'), {
    status: 403,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: '{"error":"ip_denied","message":"not from here","requestId":"req-1"}'
  })
  t.same(refusal(413, 'payload_too_large', 'too big', 'req-2', true), {
    status: 413,
    headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
    body: '{"error":"payload_too_large","message":"too big","requestId":"req-2"}'
  })
})
