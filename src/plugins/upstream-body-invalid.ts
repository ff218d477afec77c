/**
 * The error a response body stream (GatewayResponse.pipeThrough) fails with when the upstream's
 * bytes cannot be read as they were sent (a corrupt or truncated Content-Encoding, say): the fault
 * is the upstream's, not the plugin's. The response is cut (`upstream_broken`) and a warning
 * logged, as for an upstream that breaks its body; any other failure is the plugin's.
 */
export class UpstreamBodyInvalid extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UpstreamBodyInvalid'
  }
}
