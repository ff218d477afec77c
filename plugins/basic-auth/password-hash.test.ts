import t from 'tap'
import crypto from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { BUSY, ENDED, PasswordBook } from './password-book.ts'
import { CheckQueue } from './check-queue.ts'
import { checkPassword, hashPassword, parseHash } from './password-hash.ts'

const SALT = 'c2FsdHNhbHRzYWx0c2FsdA'
const HASH = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'
/** A request whose client is still there. */
const LIVE = { ended: false }

/** As the plugin asks: a pair that checked out before is remembered, any other is checked. */
function check (book: PasswordBook, username: string, password: string, request = LIVE) {
  const id = book.idOf(username, password)
  return book.remembered(id) ?? book.check(id, username, password, request)
}

t.test('parseHash reads the PHC string whole, and nothing around it', async t => {
  t.same(parseHash(`$scrypt$ln=17,r=10,p=12$${SALT}$${HASH}`).params, { ln: 17, r: 10, p: 12 }, 'r and p of two digits')
  t.equal(parseHash(`$scrypt$ln=14,r=8,p=1$${SALT}$${HASH}`).salt.toString(), 'saltsaltsaltsalt')
  t.same(parseHash(`$scrypt$ln=20,r=32,p=16$${SALT}$${HASH}`).params, { ln: 20, r: 32, p: 16 }, 'the highest costs')
  const outOfRange = ['ln=14,r=100,p=1', 'ln=14,r=0,p=1', 'ln=14,r=8,p=0', 'ln=14,r=33,p=1', 'ln=14,r=8,p=17', 'ln=14,r=08,p=1', 'ln=9,r=8,p=1', 'ln=21,r=8,p=1']
  for (const bad of [`x$scrypt$ln=14,r=8,p=1$${SALT}$${HASH}`, `$scrypt$ln=14,r=8,p=1$${SALT}$${HASH} x`, ...outOfRange.map(p => `$scrypt$${p}$${SALT}$${HASH}`)]) {
    t.throws(() => parseHash(bad), { message: 'not a $scrypt$ PHC string' }, bad)
  }
})

t.test('N must be below 2^(16·r), as scrypt requires: ln 16 and up with r=1 is refused as OpenSSL refuses it', async t => {
  for (const bad of ['ln=16,r=1,p=1', 'ln=20,r=1,p=16']) {
    t.throws(() => parseHash(`$scrypt$${bad}$${SALT}$${HASH}`), { message: 'scrypt needs N = 2^ln below 2^(16·r): ln 16 and up need r 2 or more' }, bad)
    const [ln, r, p] = bad.match(/\d+/g)?.map(Number) as [number, number, number]
    await t.rejects(hashPassword('x', { ln, r, p }), { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' }, `${bad}: Node's scrypt refuses it too`)
  }
  t.same(parseHash(`$scrypt$ln=16,r=2,p=1$${SALT}$${HASH}`).params, { ln: 16, r: 2, p: 1 }, 'r=2 allows N up to 2^31')
  const edge = await hashPassword('right', { ln: 15, r: 1, p: 1 })
  t.ok(await checkPassword('right', parseHash(edge)), 'ln=15 with r=1, the highest N r=1 allows: a hash made and checked')
})

/** Median ms of five runs of `f`. */
async function medianMs (f: () => unknown): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const start = performance.now()
    await f()
    times.push(performance.now() - start)
  }
  return times.sort((a, b) => a - b)[2] as number
}

t.test('an unknown user name costs what a known one does: the stand-in hash has the users\' parameters', async t => {
  // The cheapest parameters the format allows: the default (2^14, r=8) costs about fifty times more.
  const cheap = await hashPassword('right', { ln: 10, r: 1, p: 1 })
  const book = new PasswordBook([{ consumer: { id: 'ann', groups: [], metadata: {} }, credential: { username: 'ann', password: cheap } }], new CheckQueue(2, 64), memoryLogger().log)
  t.match(await check(book, 'ann', 'right', LIVE), { id: 'ann' })
  t.equal(await check(book, 'ann', 'wrong', LIVE), undefined)
  t.equal(await check(book, 'nobody', 'right', LIVE), undefined)
  const known = await medianMs(() => check(book, 'ann', 'wrong', LIVE))
  const unknown = await medianMs(() => check(book, 'nobody', 'wrong', LIVE))
  t.ok(unknown < known * 5 + 10, `unknown user ${unknown.toFixed(1)} ms, known user ${known.toFixed(1)} ms`)
})

t.test('users of different costs: an unknown user name pays the costliest one\'s, and the mix is warned about', async t => {
  // The scrypt cost (N) of each derivation, whatever module calls it.
  const costs: number[] = []
  const scrypt = crypto.scrypt
  crypto.scrypt = ((...args: Parameters<typeof scrypt>) => {
    costs.push((args[3] as { N: number }).N)
    return (scrypt as (...a: unknown[]) => void)(...args)
  }) as typeof scrypt
  syncBuiltinESMExports()
  t.teardown(() => { crypto.scrypt = scrypt; syncBuiltinESMExports() })
  const [ann, bob] = await Promise.all([hashPassword('a', { ln: 10, r: 1, p: 1 }), hashPassword('b', { ln: 12, r: 1, p: 1 })])
  const user = (name: string, password: string) => ({ consumer: { id: name, groups: [], metadata: {} }, credential: { username: name, password } })
  const { log, lines } = memoryLogger()
  costs.length = 0
  const book = new PasswordBook([user('ann', ann), user('bob', bob)], new CheckQueue(2, 64), log)
  t.equal(await check(book, 'nobody', 'guess', LIVE), undefined)
  t.same(costs, [4096, 4096], 'the stand-in hash, then its check: bob\'s 2^12, not ann\'s 2^10 (the first user\'s)')
  const warning = lines.find(l => l.level === 40)
  t.match(warning, { costliest: 'ln=12,r=1,p=1', cheaper: 1, users: ['ann'] })
  t.match(warning?.msg, /timing tells that the name exists; hash every password with the same --cost$/)

  const same = memoryLogger()
  new PasswordBook([user('ann', ann), user('carl', await hashPassword('c', { ln: 10, r: 1, p: 1 }))], new CheckQueue(2, 64), same.log)
  t.same(same.lines.filter(l => l.level === 40), [], 'one cost for all: no warning')
})

t.test('a stand-in hash that fails is logged, never an unhandled rejection (which ends the process); only unknown user names\' checks fail', async t => {
  const cheap = await hashPassword('right', { ln: 10, r: 1, p: 1 })
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown) => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  // As OpenSSL refuses parameters: thrown synchronously by crypto.scrypt, for the stand-in hash alone.
  const scrypt = crypto.scrypt
  crypto.scrypt = (() => { throw Object.assign(new Error('Invalid scrypt params'), { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' }) }) as unknown as typeof scrypt
  syncBuiltinESMExports()
  const { log, lines } = memoryLogger()
  let book: PasswordBook
  try {
    book = new PasswordBook([{ consumer: { id: 'ann', groups: [], metadata: {} }, credential: { username: 'ann', password: cheap } }], new CheckQueue(2, 64), log)
  } finally {
    crypto.scrypt = scrypt
    syncBuiltinESMExports()
  }
  // Unhandled rejections are found once the microtasks have run: before the next setImmediate.
  await new Promise(resolve => setImmediate(resolve))
  t.same(unhandled, [], 'no unhandled rejection')
  t.match(lines.find(l => l.level === 50), { msg: 'basic-auth: the stand-in hash for unknown user names failed; their checks fail', params: 'ln=10,r=1,p=1', err: { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' } })
  await t.rejects(Promise.resolve(check(book, 'nobody', 'right', LIVE)), { code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' }, 'an unknown user name: its check fails (500 plugin_error)')
  t.match(await check(book, 'ann', 'right', LIVE), { id: 'ann' }, 'a known user is checked as ever')
})

t.test('a user name and password that checked out skip the queue; others wait for a turn, or are BUSY when it is full', async t => {
  const cheap = await hashPassword('right', { ln: 10, r: 1, p: 1 })
  const queue = new CheckQueue(1, 1)
  const book = new PasswordBook([{ consumer: { id: 'ann', groups: [], metadata: {} }, credential: { username: 'ann', password: cheap } }], queue, memoryLogger().log)
  t.match(await check(book, 'ann', 'right', LIVE), { id: 'ann' })
  // The one slot held, the one place in line taken: the queue is full.
  let release = () => {}
  const held = queue.run(() => new Promise<void>(resolve => { release = resolve }))
  const waiting = check(book, 'ann', 'wrong', LIVE)
  t.equal(await check(book, 'ann', 'other', LIVE), BUSY, 'a pair not checked before: not checked, BUSY')
  t.match(await check(book, 'ann', 'right', LIVE), { id: 'ann' }, 'the pair that checked out: let in without a turn')
  release()
  await held
  t.equal(await waiting, undefined, 'the one in line is checked once the slot is free')
})

t.test('a check whose request ended while it waited is not run: ENDED, and the turn passes on', async t => {
  const cheap = await hashPassword('right', { ln: 10, r: 1, p: 1 })
  const queue = new CheckQueue(1, 5)
  const book = new PasswordBook([{ consumer: { id: 'ann', groups: [], metadata: {} }, credential: { username: 'ann', password: cheap } }], queue, memoryLogger().log)
  let release = () => {}
  const held = queue.run(() => new Promise<void>(resolve => { release = resolve }))
  const request = { ended: false }
  const leaving = check(book, 'ann', 'right', request)
  const staying = check(book, 'ann', 'right', LIVE)
  request.ended = true
  release()
  await held
  t.equal(await leaving, ENDED, 'not checked: not remembered as checked either')
  t.match(await staying, { id: 'ann' }, 'the next in line is checked')
})

t.test('the queue hands a freed slot to the next in line, in order, never to a newcomer first', async t => {
  const queue = new CheckQueue(1, 10)
  const order: string[] = []
  let release = () => {}
  const first = queue.run(() => new Promise<void>(resolve => { release = resolve }))
  const second = queue.run(async () => { order.push('second') })
  release()
  await first
  const newcomer = queue.run(async () => { order.push('newcomer') })
  await Promise.all([second, newcomer])
  t.same(order, ['second', 'newcomer'])
})
