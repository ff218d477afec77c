import t from 'tap'
// Date.parse reads an asctime-date as local time: the comparisons below once differed by the zone's offset.
process.env.TZ = 'America/New_York'
const { describesStored, httpDate, sameDate } = await import('./conditional.ts')

t.test('years below 100 are those years, not 1900 to 1999', async t => {
  t.equal(new Date(httpDate('Sat, 01 Jan 0000 00:00:00 GMT')).toISOString(), '0000-01-01T00:00:00.000Z')
  t.equal(new Date(httpDate('Thu, 31 Dec 0099 23:59:59 GMT')).toISOString(), '0099-12-31T23:59:59.000Z')
  t.ok(Number.isNaN(httpDate('Sun, 29 Feb 0099 00:00:00 GMT')), 'no 29 February in 99')
})

t.test('a Last-Modified in two HTTP-date spellings is one time, whatever the local zone', async t => {
  const imf = 'Sun, 06 Nov 1994 08:49:37 GMT'
  const asctime = 'Sun Nov  6 08:49:37 1994'
  t.ok(sameDate(imf, asctime))
  t.ok(describesStored({ 'last-modified': asctime }, { 'last-modified': imf }), 'a 304 naming it in asctime describes the stored response')
  t.notOk(sameDate(imf, 'Sun, 06 Nov 1994 08:49:38 GMT'))
})

t.test('a date that is no HTTP-date equals only the same text', async t => {
  t.ok(sameDate('yesterday', 'yesterday'))
  t.notOk(sameDate('yesterday', 'Sun, 06 Nov 1994 08:49:37 GMT'))
  t.notOk(sameDate(undefined, undefined))
})
