import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** The first port the kernel hands out for bind(0) and outgoing connections. */
const ephemeralLow = (() => {
  try { return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32_768 } catch { return 32_768 }
})()

/**
 * A free loopback port below the kernel's ephemeral range, with port + 10000 below it too (a
 * Redis Cluster node's bus port). No server listening on port 0 and no outgoing connection ever
 * takes one, so a test can stop a server and start it again on its port, or count on a dead
 * one being refused (a port from listen(0) was taken by a parallel test's server in between).
 */
export async function freePort (): Promise<number> {
  const span = Math.max(1_000, ephemeralLow - 20_000)
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * span)
    const free = await new Promise<boolean>(resolve => {
      const s = createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (free) return port
  }
}
