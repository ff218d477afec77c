import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { freePort } from './ports.ts'

/**
 * A real Prometheus with `config` (prometheus.yml's text) on a free loopback port, once it is
 * ready; `api` is its /api/v1 base. Started again on another port if a parallel test took the
 * free one before Prometheus could bind it.
 */
export async function startPrometheus (config: string, args: string[] = []): Promise<{ api: string, close (): Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'pc-prometheus-'))
    writeFileSync(join(dir, 'prometheus.yml'), config)
    const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...args], { stdio: 'ignore' })
    const close = async (): Promise<void> => {
      if (prom.exitCode === null && prom.signalCode === null) await new Promise(resolve => { prom.once('exit', resolve); prom.kill('SIGTERM') })
      rmSync(dir, { recursive: true, force: true })
    }
    const api = `http://127.0.0.1:${port}/api/v1`
    for (let i = 0; i < 600 && prom.exitCode === null; i++) {
      try {
        // Whatever took the port (a parallel test's server, or its Prometheus) may answer too: this
        // Prometheus is the one ready with this storage dir.
        const ready = await request(`http://127.0.0.1:${port}/-/ready`)
        const text = await ready.body.text()
        if (ready.statusCode === 200 && text.trim() === 'Prometheus Server is Ready.') {
          const flags = await (await request(`${api}/status/flags`)).body.json() as { data?: Record<string, string> }
          if (flags.data?.['storage.tsdb.path'] === join(dir, 'data')) return { api, close }
        }
      } catch { /* not listening yet, or not Prometheus */ }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const code = prom.exitCode
    await close()
    if (code === null) throw new Error('prometheus did not become ready in 30 s')
    if (attempt === 5) throw new Error(`prometheus exited with ${code}`)
  }
}
