import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

const HEAD = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n'
const route = (fields: string) => `${HEAD}  - { name: r, ${fields} }\n`

// Hidden as a glued secret key (`path "/a/:token:[redacted]"`, `unknown upstream "token:[redacted]"`): the name to fix was lost.
t.test('a config problem quotes route paths and upstream names whole, colons and secret-looking words included', async t => {
  t.same(await issues(t, route('match: { path: "/a/:token:id" }, upstream: up')), [
    'gw.yaml:6:31 routes[0].match.path: path "/a/:token:id": ":token:id" is not a valid param name'
  ])
  t.same(await issues(t, route('match: { path: /a }, upstream: token:v2')), [
    'gw.yaml:6:47 routes[0].upstream: unknown upstream "token:v2"; there are: up'
  ])
  t.same(await issues(t, route('match: { path: /a }, upstream: "secret:prod"')), [
    'gw.yaml:6:47 routes[0].upstream: unknown upstream "secret:prod"; there are: up'
  ])
})

t.test('what a config problem may quote of a secret is still hidden', async t => {
  const shown = async (text: string, env: NodeJS.ProcessEnv = {}) => (await issues(t, text, env)).join('\n')
  const hidden = (text: string, secret: string, what: string) => {
    t.match(text, '[redacted]', `${what}: hidden`)
    t.notMatch(text, secret, `${what}: not shown`)
  }
  hidden(await shown(route('match: { path: "/c?token=SECRET_Q" }, upstream: up')), 'SECRET_Q', 'a secret query value in a path')
  hidden(await shown(`${HEAD}  - { name: r, match: { path: /a }, upstream: up }\n`.replace('http://127.0.0.1:1', 'htp://u:SECRET_PW@127.0.0.1:1')), 'SECRET_PW', 'a URL\'s password')
  hidden(await shown(`admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "\${ADMIN_TOKEN:=SECRET_DEFAULT}"\n${HEAD}  - { name: r, match: { path: /a }, upstream: up }\n`), 'SECRET_DEFAULT', 'a secret variable\'s default')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      jwt-auth: { secret: "${JWT_SECRET:=SECRET_UNCLOSED" }\n'), 'SECRET_UNCLOSED', 'one cut short')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      jwt-auth: { secret:SECRET_GLUED }\n'), 'SECRET_GLUED', 'a key glued to its value')
  t.match(await shown(`${HEAD}  - { name: r, match: { path: /a }, upstream: up }\nadmin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "\${ADMIN_TOKEN}"\n`), 'use ${ADMIN_TOKEN:-default} for a default', 'the hint is kept')
})
