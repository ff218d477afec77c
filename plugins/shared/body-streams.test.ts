import { once } from 'node:events'
import t from 'tap'
import { Capture } from './body-streams.ts'

t.test('Capture: the body up to the limit, nothing past it or when broken', async t => {
  const capture = async (limit: number, chunks: string[]) => {
    let got: Buffer | undefined | 'not called' = 'not called'
    const c = new Capture(limit, b => { got = b })
    const out: Buffer[] = []
    c.on('data', (d: Buffer) => out.push(d))
    for (const x of chunks) c.write(Buffer.from(x))
    c.end()
    await once(c, 'end')
    return { got, passed: Buffer.concat(out).toString() }
  }
  t.same(await capture(5, ['ab', 'cde']), { got: Buffer.from('abcde'), passed: 'abcde' }, 'exactly the limit is kept')
  t.same(await capture(4, ['ab', 'cde', 'f']), { got: undefined, passed: 'abcdef' }, 'past the limit: dropped, the client still gets it all')
  t.same(await capture(4, []), { got: Buffer.alloc(0), passed: '' })
  const early: Array<Buffer | undefined> = []
  const large = new Capture(4, b => early.push(b))
  large.resume()
  large.write(Buffer.from('abc'))
  t.same(early, [], 'within the limit: nothing said yet')
  large.write(Buffer.from('de'))
  t.same(early, [undefined], 'past the limit: undefined at once, before the end')
  large.end(Buffer.from('f'))
  await once(large, 'end')
  t.same(early, [undefined], 'once')
  const calls: Array<Buffer | undefined> = []
  const broken = new Capture(10, b => calls.push(b))
  broken.on('error', () => {})
  broken.write(Buffer.from('ab'))
  const closed = new Promise(resolve => broken.on('close', resolve))
  broken.destroy(new Error('reset'))
  await closed
  t.same(calls, [undefined], 'a broken stream: undefined, once')
  // Nobody reads: writes complete while the copy is kept, and wait for a reader past the limit.
  const paced = new Capture(64 * 1024, () => {})
  const written: number[] = []
  for (const size of [40 * 1024, 20 * 1024, 20 * 1024]) paced.write(Buffer.alloc(size), () => written.push(size))
  await new Promise(resolve => setImmediate(resolve))
  t.same(written, [40 * 1024, 20 * 1024], 'within the limit: taken at the writer\'s pace')
  paced.resume()
  await new Promise(resolve => setImmediate(resolve))
  t.same(written, [40 * 1024, 20 * 1024, 20 * 1024], 'past it: once read')
})
