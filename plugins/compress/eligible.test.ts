import t from 'tap'
import { typeMatcher } from './eligible.ts'

t.test('typeMatcher: exact types, type/* and type/*+suffix, parameters and case ignored', async t => {
  const allowed = typeMatcher(['application/json', 'text/*', 'application/*+xml'])
  const cases: Array<[string, boolean]> = [
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['application/json ; charset=utf-8', true],
    ['Application/JSON', true],
    ['application/geo+json', false],
    ['application/x-json', false],
    ['text/plain', true],
    ['text/html;charset=utf-8', true],
    ['textual/plain', false],
    ['application/atom+xml', true],
    ['application/xml', false],
    ['applications/atom+xml', false],
    ['image/svg+xml', false],
    ['application/octet-stream', false],
    ['', false]
  ]
  for (const [type, expected] of cases) t.equal(allowed(type), expected, `${JSON.stringify(type)}: ${expected}`)
})
