import { writeFileSync, mkdirSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

/**
 * CPU profiling of this target, started on the bench's request (after warm-up, so start-up and
 * JIT warm-up stay out of it) and written as DIR/<name>.cpuprofile when the target stops.
 */
export class Profiler {
  #session: Session | undefined

  async start (): Promise<void> {
    this.#session = new Session()
    this.#session.connect()
    await this.#session.post('Profiler.setSamplingInterval', { interval: 500 })
    await this.#session.post('Profiler.enable')
    await this.#session.post('Profiler.start')
  }

  async stop (dir: string, name: string): Promise<void> {
    if (this.#session === undefined) return
    const { profile } = await this.#session.post('Profiler.stop')
    this.#session.disconnect()
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
  }
}
