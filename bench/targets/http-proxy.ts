import fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'
import { announce } from './announce.ts'

// The baseline: the plainest @fastify/http-proxy in front of the same upstream.
const app = fastify({ logger: false })
await app.register(httpProxy, { upstream: process.env.BENCH_UPSTREAM as string })
await app.listen({ host: '127.0.0.1', port: 0 })
announce(app.server.address())
