import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

// A window is whole seconds, minutes, hours or days (RateLimit-Policy's w): one written as an
// ordinary duration is refused with what it seems meant as, as other durations are.
const WINDOW = 'must be a whole number of seconds, minutes, hours or days up to 365d, e.g. 1s, 10m, 1d (or milliseconds, a multiple of 1000)'

t.test('a window written with a space, a spelt-out unit, a fraction, milliseconds or as a bare number says what it is written as', async t => {
  const limits = ['1 min', '60', '30sec', '1.5m', '500ms', '60000ms', '"${W}"', 'soon']
    .map((w, i) => `        - { name: l${i}, requests: 1, window: ${w} }\n`).join('')
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      rate-limit:\n        limits:\n${limits}`, { W: '90' }), [
    `gw.yaml:12:44 routes[0].plugins.rate-limit.limits[0].window: ${WINDOW} (no space between the number and the unit: "1 min" is written 1m)`,
    `gw.yaml:13:44 routes[0].plugins.rate-limit.limits[1].window: ${WINDOW} (60 is milliseconds: did you mean 60s?)`,
    `gw.yaml:14:44 routes[0].plugins.rate-limit.limits[2].window: ${WINDOW} (units are s, m, h and d: "30sec" is written 30s)`,
    `gw.yaml:15:44 routes[0].plugins.rate-limit.limits[3].window: ${WINDOW} ("1.5m" is written 90s)`,
    `gw.yaml:16:44 routes[0].plugins.rate-limit.limits[4].window: ${WINDOW} (the shortest is 1s)`,
    `gw.yaml:17:44 routes[0].plugins.rate-limit.limits[5].window: ${WINDOW} ("60000ms" is written 1m)`,
    `gw.yaml:18:44 routes[0].plugins.rate-limit.limits[6].window: ${WINDOW} (90 is milliseconds: did you mean 90s?) (from "\${W}")`,
    `gw.yaml:19:44 routes[0].plugins.rate-limit.limits[7].window: ${WINDOW} (got "soon")`
  ])
})

t.test("a consumer's window is explained alike; one refused as too long or as no whole number of seconds says no more", async t => {
  t.same(await issues(t, `consumers:
  - id: alice
    metadata:
      rate-limit: { l0: { window: 2 hours }, l1: { window: 400d }, l2: { window: 1500ms } }
${ONE_ROUTE_PLUGINS}      rate-limit: { limits: [ { name: l0, requests: 1, window: 1h }, { name: l1, requests: 1, window: 1h }, { name: l2, requests: 1, window: 1h } ] }
`), [
    `gw.yaml:4:35 consumers[0].metadata.rate-limit.l0.window: ${WINDOW} (no space between the number and the unit: "2 hours" is written 2h)`,
    `gw.yaml:4:60 consumers[0].metadata.rate-limit.l1.window: ${WINDOW}`,
    `gw.yaml:4:82 consumers[0].metadata.rate-limit.l2.window: ${WINDOW}`
  ])
})

t.test('a window with a space around it, a unit in capitals or milliseconds past 999 says what is wrong', async t => {
  const limits = ['"90s "', '1M', '30S', '1500', '"${W}"']
    .map((w, i) => `        - { name: l${i}, requests: 1, window: ${w} }\n`).join('')
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      rate-limit:\n        limits:\n${limits}`, { W: '2500' }), [
    `gw.yaml:12:44 routes[0].plugins.rate-limit.limits[0].window: ${WINDOW} (no spaces: "90s " is written 90s)`,
    `gw.yaml:13:44 routes[0].plugins.rate-limit.limits[1].window: ${WINDOW} (units are lower case: s, m, h and d; M could be a month)`,
    `gw.yaml:14:44 routes[0].plugins.rate-limit.limits[2].window: ${WINDOW} (units are lower case: "30S" is written 30s)`,
    `gw.yaml:15:44 routes[0].plugins.rate-limit.limits[3].window: ${WINDOW} (a number is milliseconds: 1500 is not a multiple of 1000)`,
    `gw.yaml:16:44 routes[0].plugins.rate-limit.limits[4].window: ${WINDOW} (a number is milliseconds: 2500 is not a multiple of 1000) (from "\${W}")`
  ])
})
