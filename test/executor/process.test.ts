import { describe, expect, it } from 'vitest'
import { ProcessDriver } from '../../src/executor/process.js'
import type { ReplicaInfo, ReplicaSpec } from '../../src/executor/types.js'

const spec = (command: string[], over: Partial<ReplicaSpec> = {}): ReplicaSpec => ({
  workloadUri: `at://did:plc:owner/commune.scheduler.workload/p${Math.random().toString(36).slice(2)}`,
  replica: 0,
  meshletDid: 'did:plc:processtest',
  image: 'ignored',
  command,
  cpuMillis: 500,
  memoryMiB: 256,
  ...over,
})

const exitOf = (d: ProcessDriver, uri: string) =>
  new Promise<ReplicaInfo>((resolve) => {
    const off = d.onExit((i) => {
      if (i.workloadUri === uri) {
        off()
        resolve(i)
      }
    })
  })

describe('process driver', () => {
  it('captures output and exit code, in its own working directory', async () => {
    const d = new ProcessDriver()
    const s = spec(['sh', '-c', 'pwd; echo to-err >&2; exit 4'])
    const exit = exitOf(d, s.workloadUri)
    expect((await d.start(s)).state).toBe('running')
    const info = await exit
    expect(info.exitCode).toBe(4)
    const logs = d.logs(s.workloadUri, 0)!.data
    expect(logs).toContain('to-err')
    expect(logs).toMatch(/replica-/)
    await d.close()
  })

  it('kills a process that outlives its timeout', async () => {
    const d = new ProcessDriver()
    const s = spec(['sleep', '30'], { timeoutSeconds: 1 })
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    const info = await exit
    expect(info.state).toBe('failed')
    expect(info.message).toMatch(/timed out after 1s/)
    await d.close()
  })

  it('measures cpu time of a busy loop', async () => {
    const d = new ProcessDriver()
    const s = spec(['sh', '-c', 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'])
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    const info = await exit
    expect(info.exitCode).toBe(0)
    expect(info.cpuMillis).toBeGreaterThan(0)
    expect(info.memoryPeakBytes).toBeGreaterThan(0)
    await d.close()
  })

  it('fails clearly when the command does not exist', async () => {
    const d = new ProcessDriver()
    const info = await d.start(spec(['/nonexistent/binary']))
    expect(['failed', 'running']).toContain(info.state)
    if (info.state === 'running') {
      // prlimit exists, so the spawn succeeded and prlimit itself reports the failure
      const exit = await exitOf(d, info.workloadUri)
      expect(exit.exitCode).not.toBe(0)
    } else {
      expect(info.message).toMatch(/cannot run/)
    }
    await d.close()
  })
})
