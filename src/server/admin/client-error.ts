import type { Socket } from 'node:net'
import { answerOnSocket, parserError } from '../../errors.ts'

/** A request Node's HTTP parser rejected, answered in the admin API's JSON error format. */
export function adminClientError (err: Error & { code?: string }, socket: Socket): void {
  const error = parserError(err)
  const message = error.status === 400 ? `the request is not valid HTTP (${err.code ?? err.message})` : error.message
  answerOnSocket(socket, err, error.status, JSON.stringify({ error: error.code, message }))
}
