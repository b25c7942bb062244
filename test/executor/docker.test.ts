// Against the real Docker engine that .ci/run starts, with the busybox image it imports.
import Docker from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DockerDriver, LABEL_MESHLET } from '../../src/executor/docker.js'
import { reconcile } from '../../src/executor/reconcile.js'
import type { ReplicaInfo, ReplicaSpec } from '../../src/executor/types.js'
import { waitFor } from '../../src/util/time.js'
import { requireDocker } from '../helpers/docker.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const MESHLET = `did:plc:executortest${Date.now().toString(36)}`
const docker = new Docker()
let driver: DockerDriver
let n = 0

const spec = (over: Partial<ReplicaSpec> = {}): ReplicaSpec => ({
  workloadUri: `at://did:plc:owner/commune.scheduler.workload/t${Date.now().toString(36)}${n++}`,
  replica: 0,
  meshletDid: MESHLET,
  image: IMAGE,
  cpuMillis: 500,
  memoryMiB: 64,
  ...over,
})

function exitOf(d: DockerDriver, uri: string): Promise<ReplicaInfo> {
  return new Promise((resolve) => {
    const off = d.onExit((info) => {
      if (info.workloadUri !== uri) return
      off()
      resolve(info)
    })
  })
}

beforeAll(async () => {
  await requireDocker()
  driver = new DockerDriver()
})

afterAll(async () => {
  await driver?.close()
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MESHLET}=${MESHLET}`] } })
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })))
})

describe('docker driver (real engine)', () => {
  it('starts and stops, with least privilege and limits actually applied', async () => {
    const s = spec({ command: ['sleep', '60'], cpuMillis: 250, memoryMiB: 48 })
    const info = await driver.start(s)
    expect(info.state).toBe('running')
    const c = await docker.getContainer(info.id).inspect()
    expect(c.HostConfig.NanoCpus).toBe(250_000_000)
    expect(c.HostConfig.Memory).toBe(48 * 2 ** 20)
    expect(c.HostConfig.PidsLimit).toBe(256)
    expect(c.HostConfig.Privileged).toBe(false)
    expect(c.HostConfig.CapDrop).toEqual(['ALL'])
    expect(c.HostConfig.SecurityOpt).toEqual(['no-new-privileges'])
    expect(c.HostConfig.NetworkMode).toBe('none')
    expect(c.HostConfig.ReadonlyRootfs).toBe(true)
    expect(c.HostConfig.Binds ?? []).toEqual([])
    expect(c.Config.User).toBe('65534:65534')
    expect(c.Config.Labels).toMatchObject({ 'farm.meshlet.workload': s.workloadUri, 'farm.meshlet.replica': '0', 'farm.meshlet.meshlet': MESHLET })
    const stopped = await driver.stop(s.workloadUri, 0)
    expect(stopped?.state).toBe('exited')
    await expect(docker.getContainer(info.id).inspect()).rejects.toThrow()
  })

  it('tier b gets a bridge network and a writable /scratch on a read-only root, still unprivileged', async () => {
    const s = spec({ command: ['sleep', '30'], tier: 'b', storageMiB: 32 })
    const info = await driver.start(s)
    const c = await docker.getContainer(info.id).inspect()
    expect(c.HostConfig.NetworkMode).toBe('bridge')
    expect(c.HostConfig.ReadonlyRootfs).toBe(true)
    expect(c.HostConfig.Tmpfs?.['/scratch']).toContain('size=32m')
    expect(c.HostConfig.Privileged).toBe(false)
    await driver.stop(s.workloadUri, 0)
  })

  it('captures exit code, output, cpu time and peak memory', async () => {
    const s = spec({ command: ['sh', '-c', 'echo out; echo err >&2; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3'], cpuMillis: 1000 })
    const exit = exitOf(driver, s.workloadUri)
    expect((await driver.start(s)).state).toBe('running')
    const info = await exit
    expect(info.exitCode).toBe(3)
    expect(info.cpuMillis).toBeGreaterThan(0)
    expect(info.memoryPeakBytes).toBeGreaterThan(0)
    const logs = driver.logs(s.workloadUri, 0)!
    expect(logs.data).toContain('out')
    expect(logs.data).toContain('err')
    await driver.stop(s.workloadUri, 0)
  })

  it('asks for a storage limit, and runs without one where the engine cannot enforce it', async () => {
    const s = spec({ command: ['sleep', '30'], storageMiB: 100 })
    const info = await driver.start(s)
    expect(info.state).toBe('running')
    const c = await docker.getContainer(info.id).inspect()
    // overlay2 on ext4 (this machine) cannot; on xfs with pquota the limit is set
    const opt = (c.HostConfig as { StorageOpt?: Record<string, string> }).StorageOpt
    if (opt) expect(opt.size).toBe('100M')
    await driver.stop(s.workloadUri, 0)
  })

  it('never touches another meshlet’s container on a shared engine', async () => {
    const mine = new DockerDriver({ meshletDid: MESHLET })
    const other = new DockerDriver({ meshletDid: `${MESHLET}x` })
    const s = spec({ command: ['sleep', '30'] })
    const info = await mine.start(s)
    // the other meshlet yields the same workload replica it never started
    expect(await other.stop(s.workloadUri, 0)).toBeUndefined()
    expect(await other.inspect(s.workloadUri, 0)).toBeUndefined()
    expect((await docker.getContainer(info.id).inspect()).State.Running).toBe(true)
    await mine.stop(s.workloadUri, 0)
    await other.close()
    await mine.close()
  })

  it('reports a missing image as failed with a clear reason, without hanging', async () => {
    const info = await driver.start(spec({ image: 'meshlet-test/does-not-exist:1' }))
    expect(info.state).toBe('failed')
    expect(info.message).toMatch(/not present and could not be pulled/)
  })

  it('rejects an image whose pinned digest does not match', async () => {
    const info = await driver.start(spec({ image: `meshlet-test/busybox@sha256:${'0'.repeat(64)}` }))
    expect(info.state).toBe('failed')
    expect(info.message).toMatch(/digest|could not be pulled/)
  })

  it('kills a replica that outlives its timeout and says so', async () => {
    const s = spec({ command: ['sleep', '60'], timeoutSeconds: 1 })
    const exit = exitOf(driver, s.workloadUri)
    await driver.start(s)
    const info = await exit
    expect(info.state).toBe('failed')
    expect(info.message).toMatch(/timed out after 1s/)
    await driver.stop(s.workloadUri, 0)
  })

  it('adopts what belongs and removes orphans after a crash, restarting nothing', async () => {
    const keep = spec({ command: ['sleep', '60'] })
    const orphan = spec({ command: ['sleep', '60'] })
    const crashed = new DockerDriver()
    const kept = await crashed.start(keep)
    await crashed.start(orphan)
    // the daemon dies without stopping anything; a new one comes up
    const fresh = new DockerDriver()
    const holds = (f: ReplicaInfo) => (f.workloadUri === keep.workloadUri ? keep : undefined)
    const r = await reconcile(fresh, MESHLET, holds)
    expect(r.adopted.map((i) => `${i.workloadUri}#${i.replica}`)).toEqual([`${keep.workloadUri}#0`])
    expect(r.removed).toEqual([`${orphan.workloadUri}#0`])
    const after = await fresh.inspect(keep.workloadUri, 0)
    expect(after?.id).toBe(kept.id) // the same container, not a restart
    expect(after?.state).toBe('running')
    // idempotent: a second pass changes nothing, and starts nothing (starting is the engine's decision)
    const again = await reconcile(fresh, MESHLET, holds)
    expect(again.adopted.map((i) => i.id)).toEqual([kept.id])
    expect(again.removed).toEqual([])
    expect((await fresh.listOwn(MESHLET)).map((i) => i.workloadUri)).toEqual([keep.workloadUri])
    await fresh.stop(keep.workloadUri, 0)
    await crashed.close()
    await fresh.close()
  })
})
