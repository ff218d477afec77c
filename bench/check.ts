import { request } from 'undici'

/** One request before any load: the target must answer 200 with the upstream's body, whole. */
export async function checkTarget (name: string, url: string, size: number): Promise<void> {
  const res = await request(url)
  const body = await res.body.arrayBuffer()
  if (res.statusCode !== 200 || body.byteLength !== size) {
    throw new Error(`${name} answered ${res.statusCode} with ${body.byteLength} bytes, expected 200 with ${size}`)
  }
}
