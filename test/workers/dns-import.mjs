// For tests, loaded with --import: lookups of the name $PORTCULLIS_TEST_DNS_NAME answer the addresses
// the JSON file $PORTCULLIS_TEST_DNS_FILE lists, read at each lookup: under "primary" in the cluster
// primary, under "worker" in a worker. Other names resolve as usual.
import dns from 'node:dns'
import { readFileSync } from 'node:fs'

const name = process.env.PORTCULLIS_TEST_DNS_NAME
const file = process.env.PORTCULLIS_TEST_DNS_FILE
if (name !== undefined && file !== undefined) {
  const lookup = dns.promises.lookup
  dns.promises.lookup = (host, options) => {
    if (host !== name) return lookup(host, options)
    const answers = JSON.parse(readFileSync(file, 'utf8'))
    const addresses = answers[process.env.PORTCULLIS_WORKER_INDEX === undefined ? 'primary' : 'worker']
    return Promise.resolve(addresses.map(address => ({ address, family: 4 })))
  }
}
