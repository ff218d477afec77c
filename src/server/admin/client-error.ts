import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { answerOnSocket, GatewayError, parserError } from '../../errors.ts'
import { bodyUnderWay } from '../unused-connections.ts'
import { ADMIN_HEADERS } from './endpoints.ts'

/** ADMIN_HEADERS as the head of an answer written on the socket has them. */
const HEADERS = Object.entries(ADMIN_HEADERS).map(([name, value]) => `${name}: ${value}\r\n`).join('')

/**
 * A request Node's HTTP parser rejected, answered in the admin API's JSON error format. Node's
 * timeout is one error for the head's limit and the whole request's: past a complete head, it is the body's.
 */
export function adminClientError (err: Error & { code?: string }, socket: Socket): void {
  const error = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && bodyUnderWay(socket) !== undefined ? GatewayError.BODY_TIMEOUT : parserError(err)
  const message = error.status === 400 ? `the request is not valid HTTP (${err.code ?? err.message})` : error.message
  answerOnSocket(socket, err, error.status, JSON.stringify({ error: error.code, message }), HEADERS)
}

/** CONNECT, which Node hands over with the socket (unanswered, it would just be closed): 501, as on the gateway's port. */
export function adminConnect (_req: IncomingMessage, socket: Duplex): void {
  const error = GatewayError.CONNECT_REFUSED
  answerOnSocket(socket, {}, error.status, JSON.stringify({ error: error.code, message: 'the admin API does not open CONNECT tunnels' }), HEADERS)
}
