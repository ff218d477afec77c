import { randomUUID } from 'node:crypto'

// Accept a client's id only if it is short and harmless in logs and headers.
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The incoming x-request-id if it is safe to pass on, else a new UUID. */
export function requestId (incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID()
}
