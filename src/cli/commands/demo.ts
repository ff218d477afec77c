import { startDemoUpstream } from '../../demo/upstreams.ts'
import { run as start } from './start.ts'
import { parseCommand } from '../options.ts'

const HELP = `Usage: portcullis demo [-c FILE]

Starts demo "users" (127.0.0.1:3001) and "orders" (127.0.0.1:3002) services, then the gateway
with FILE (default config/demo.yaml, whose upstreams point at them), and prints requests to try.`

const DEMO_CONFIG = 'config/demo.yaml'

/** What to try, as the README shows it too (a test holds both to what the gateway answers). */
export const TRY = `curl -i http://127.0.0.1:8080/users/7                 # -> users service, with x-gateway added
curl -i http://127.0.0.1:8080/orders                  # 401: this route wants an API key
curl -i http://127.0.0.1:8080/orders -H 'x-api-key: demo-key-for-the-quick-start' \\
     -H 'content-type: application/json' -d '{"item":"book"}'   # 200, with RateLimit headers; the 6th in a minute: 429
curl -i --compressed http://127.0.0.1:8080/catalog/books   # Cache-Status: fwd=uri-miss, stored; compressed
curl -i --compressed http://127.0.0.1:8080/catalog/books   # again: Cache-Status: hit, and Age
curl -i http://127.0.0.1:8080/nothing-here            # 404 with a JSON body
curl -i --path-as-is http://127.0.0.1:8080/orders/../users/7   # normalized before matching: the users route
curl -s http://127.0.0.1:9901/readyz                  # admin listener`

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { config: DEMO_CONFIG })
  if (typeof opts === 'number') return opts
  const started = await Promise.allSettled([startDemoUpstream('users', 3001), startDemoUpstream('orders', 3002)])
  const services = started.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  const failed = started.find(s => s.status === 'rejected')
  if (failed !== undefined) {
    for (const s of services) s.close()
    const err = failed.reason as Error & { code?: string, address?: string, port?: number }
    if (err.code !== 'EADDRINUSE') throw err
    console.error(`portcullis demo: cannot start a demo service on ${err.address ?? '127.0.0.1'}:${err.port ?? '?'}: the address is already in use. ` +
      'The demo needs 127.0.0.1:3001 and 127.0.0.1:3002 free (is a demo already running?).')
    return 1
  }
  console.log(`
Demo services are up. Once the gateway says it is listening, try:

${TRY.replace(/^/gm, '  ')}

Stop with Ctrl-C.
`)
  const code = await start(['-c', opts.config])
  for (const s of services) s.close()
  return code
}
