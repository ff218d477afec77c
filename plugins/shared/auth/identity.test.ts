import t from 'tap'
import { headerValue } from './identity.ts'

t.test('header values the upstream reads back exactly with decodeURIComponent', async t => {
  const cases: Array<[unknown, string]> = [
    ['alice', 'alice'],
    ['one\ttwo', 'one\ttwo'],
    ['100%', '100%25'],
    ['%41lice', '%2541lice'],
    [' alice', '%20alice'],
    ['alice ', 'alice%20'],
    ['a\r\nb', 'a%0D%0Ab'],
    ['Zoë', 'Zo%C3%AB'],
    [['a', 'b,c', ' d'], 'a,b%2Cc,%20d'],
    [7, '7'],
    [{ id: '%' }, '%7B%22id%22%3A%22%25%22%7D']
  ]
  for (const [value, sent] of cases) {
    t.equal(headerValue(value), sent, JSON.stringify(value))
    if (typeof value === 'string') t.equal(decodeURIComponent(headerValue(value)), value, 'read back')
  }
})
