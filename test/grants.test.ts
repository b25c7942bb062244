// Share grants enforced by a real meshlet daemon on a real PDS and Docker engine: the tier
// ceiling, the concurrent-job limit, pause, expiry, wall time, revoke (drain, kill, and
// a deleted grant), each ending the way the grant says; the disk floor as the meshlet's
// own decline; the container profile of each trust tier; GPUs handed out by device index.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Docker from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import { PlacementEngine } from '../src/daemon/engine.js'
import { LocalDb } from '../src/db/index.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { diskFloorMiB, diskReader, readDisk } from '../src/executor/disk.js'
import { containerConfig, DockerDriver, LABEL_MESHLET } from '../src/executor/docker.js'
import { GpuAllocator } from '../src/executor/gpu.js'
import type { ReplicaInfo, ReplicaSpec } from '../src/executor/types.js'
import { COLLECTIONS, type ShareGrantRecord, type WorkloadRecord, type WorkloadStatusRecord } from '../src/records/index.js'
import { Outbox } from '../src/repo/outbox.js'
import { place, type Placement } from '../src/scheduler/placement.js'
import { silentLogger } from '../src/util/logger.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'
import { requireDocker } from './helpers/docker.js'
import { cli, ownerEnvOf } from './helpers/cli.js'
import { rec, stateOf } from './scheduler/world.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const WAIT = { timeoutMs: 90_000 }
const docker = new Docker()

let net: DevNetwork
let lender: Member
let daemon: Meshlet

beforeAll(async () => {
  await requireDocker()
  net = await startNetwork()
  lender = await addMember(net, 'lena')
  daemon = await startMeshlet(net, lender, { driver: 'docker', resources: { cpuMillis: 4000, memoryMiB: 4096, storageMiB: 4096, gpus: 0 } })
}, 120_000)

afterAll(async () => {
  await daemon?.close({ stopReplicas: true })
  await net?.close()
}, 60_000)

/** A recipient (an owner with no meshlet of its own) and a grant of the lender's meshlet to it. */
async function recipientWithGrant(name: string, over: Partial<ShareGrantRecord> = {}): Promise<{ rex: DevAccount; grant: ShareGrantRecord; rkey: string; uri: string }> {
  const rex = await net.createAccount(name)
  const grant: ShareGrantRecord = { $type: COLLECTIONS.shareGrant, meshlet: lender.meshlet.did, recipient: rex.did, tier: 'a', createdAt: nowIso(), ...over }
  const res = await lender.owner.writer.create(COLLECTIONS.shareGrant, grant)
  await waitFor(() => daemon.ctx.state.grants.get(res.uri)?.cid === res.cid, { what: 'the grant on the lender’s meshlet', ...WAIT })
  return { rex, grant, rkey: res.uri.split('/').pop()!, uri: res.uri }
}

/** Changes a grant and waits until the lender's meshlet has seen the change. */
async function updateGrant(g: { grant: ShareGrantRecord; rkey: string; uri: string }, over: Partial<ShareGrantRecord>): Promise<void> {
  g.grant = { ...g.grant, ...over }
  const res = await lender.owner.writer.put(COLLECTIONS.shareGrant, g.rkey, g.grant)
  await waitFor(() => daemon.ctx.state.grants.get(g.uri)?.cid === res.cid, { what: 'the grant change on the lender’s meshlet', ...WAIT })
}

async function submit(rex: DevAccount, over: Partial<WorkloadRecord>): Promise<string> {
  const { uri } = await rex.writer.create(COLLECTIONS.workload, workloadRecord({ image: IMAGE, resources: { cpuMillis: 250, memoryMiB: 64 }, ...over }))
  await waitFor(() => daemon.ctx.state.workloads.has(uri), { what: 'the workload on the lender’s meshlet', ...WAIT })
  return uri
}

const statusOf = (uri: string): WorkloadStatusRecord | undefined => daemon.ctx.state.statusesFor(uri).find((s) => s.did === lender.meshlet.did && s.record.replica === 0)?.record
const placement = (uri: string): Placement => place(daemon.ctx.state, uri, Date.now())!
const whyNot = (uri: string) => placement(uri).whyNot.find((w) => w.meshlet === lender.meshlet.did)?.reason

const until = (uri: string, pred: (s: WorkloadStatusRecord) => boolean, what: string) => waitFor(() => { const s = statusOf(uri); return s && pred(s) ? s : undefined }, { what, ...WAIT })
const containersOf = (uri: string) => execFileSync('docker', ['ps', '-q', '--filter', `label=farm.meshlet.workload=${uri}`], { encoding: 'utf8' }).split('\n').filter(Boolean)

describe('share grants, enforced by the lending meshlet (real PDS + Docker)', () => {
  it('an approved share request lets the recipient’s workload run on the lent meshlet', async () => {
    const rex = await net.createAccount('ria')
    // the recipient asks (its own repo), the lender approves with the CLI (a grant referencing the request)
    const req = await rex.writer.create(COLLECTIONS.shareRequest, { $type: COLLECTIONS.shareRequest, owner: lender.owner.did, meshlet: lender.meshlet.did, tier: 'a', message: 'a few cpu-minutes, please', createdAt: nowIso() })
    const approved = await cli(['share', 'approve', req.uri, '--meshlet', lender.meshlet.did, '--tier', 'a', '--json'], ownerEnvOf(lender.owner, net.plcUrl), 120_000)
    expect(approved.code, approved.stderr).toBe(0)
    await waitFor(() => [...daemon.ctx.state.grants.values()].some((g) => g.record.request?.uri === req.uri), { what: 'the approved grant on the lender’s meshlet', ...WAIT })
    const uri = await submit(rex, { command: ['echo', 'borrowed'] })
    const done = await until(uri, (s) => s.state === 'succeeded', 'the recipient’s workload succeeded on the lent meshlet')
    expect(done.exitCode).toBe(0)
    expect(placement(uri).candidates.find((c) => c.did === lender.meshlet.did)?.via).toBe('grant')
  })

  it('a workload above the grant’s tier is not placed there, visibly; one within it runs at the tier allowed', async () => {
    const { rex } = await recipientWithGrant('rextier', { tier: 'b' })
    const above = await submit(rex, { tier: 'c', command: ['echo', 'never'] })
    const queued = await waitFor(() => (placement(above).phase === 'queued' ? placement(above) : undefined), { what: 'the tier-c workload queued', ...WAIT })
    expect(whyNot(above)).toBe('tier:above-ceiling')
    expect(queued.reason).toBe('1 replica(s) queued: no eligible meshlet (1 tier:above-ceiling)')
    expect(statusOf(above)).toBeUndefined()

    const within = await submit(rex, { tier: 'b', command: ['sleep', '300'], resources: { cpuMillis: 250, memoryMiB: 64, storageMiB: 16 } })
    await until(within, (s) => s.state === 'running', 'the tier-b replica running')
    const [id] = containersOf(within)
    const c = await docker.getContainer(id).inspect()
    // tier b: bridge network, read-only root, unprivileged, a /scratch within its storage
    expect(c.HostConfig.NetworkMode).toBe('bridge')
    expect(c.HostConfig.ReadonlyRootfs).toBe(true)
    expect(c.Config.User).toBe('65534:65534')
    expect(c.HostConfig.Tmpfs?.['/scratch']).toContain('size=16m')
    await rex.writer.delete(COLLECTIONS.workload, within.split('/').pop()!)
    await until(within, (s) => s.state === 'stopped', 'stopped after its record is deleted')
  })

  it('the second concurrent job under a 1-job grant waits, declined with the reason, and runs when the first finishes', async () => {
    const { rex } = await recipientWithGrant('rexlimit')
    // runs until told to finish (a signal), then exits 0 by itself
    const first = await submit(rex, { command: ['sh', '-c', "trap 'echo first done; exit 0' USR1; while :; do sleep 0.2; done"] })
    await until(first, (s) => s.state === 'running', 'the first job running')
    const second = await submit(rex, { command: ['echo', 'second'] })
    const queued = await waitFor(() => (placement(second).phase === 'queued' ? placement(second) : undefined), { what: 'the second job queued', ...WAIT })
    expect(whyNot(second)).toBe('declined:grant limit: 1 concurrent job')
    expect(queued.reason).toContain('declined:grant limit: 1 concurrent job')
    expect(statusOf(second)).toBeUndefined()
    // the first job finishes by itself: the meshlet then offers for the waiting one
    const [id] = containersOf(first)
    execFileSync('docker', ['kill', '--signal', 'USR1', id])
    await until(first, (s) => s.state === 'succeeded', 'the first job succeeded')
    const done = await until(second, (s) => s.state === 'succeeded', 'the second job succeeded')
    expect(done.round).toBeGreaterThan(0)
    expect(placement(second).selected).toEqual([expect.objectContaining({ meshlet: lender.meshlet.did, via: 'finished' })])
  })

  it('pause: no new work (not a candidate, with the reason) while running work continues; resume takes work again', async () => {
    const g = await recipientWithGrant('rexpause', { maxConcurrentJobs: 2 })
    const running = await submit(g.rex, { command: ['sleep', '300'] })
    await until(running, (s) => s.state === 'running', 'running before the pause')
    await updateGrant(g, { paused: true })
    const waiting = await submit(g.rex, { command: ['echo', 'after resume'] })
    await waitFor(() => placement(waiting).phase === 'queued', { what: 'the new workload queued while paused', ...WAIT })
    expect(whyNot(waiting)).toBe('grant:paused')
    // the running replica keeps its place and its container
    await daemon.ctx.engine.idle()
    expect(statusOf(running)?.state).toBe('running')
    expect(placement(running).selected).toEqual([expect.objectContaining({ meshlet: lender.meshlet.did, via: 'held' })])
    expect(containersOf(running)).toHaveLength(1)
    await updateGrant(g, { paused: false })
    await until(waiting, (s) => s.state === 'succeeded', 'the waiting workload runs once resumed')
    await g.rex.writer.delete(COLLECTIONS.workload, running.split('/').pop()!)
    await until(running, (s) => s.state === 'stopped', 'stopped after its record is deleted')
  })

  it('an expired grant takes no work made after its expiry', async () => {
    const { rex } = await recipientWithGrant('rexexpired', { expiresAt: new Date(Date.now() - 1000).toISOString() })
    const uri = await submit(rex, { command: ['echo', 'never'] })
    await waitFor(() => placement(uri).phase === 'queued', { what: 'queued', ...WAIT })
    expect(whyNot(uri)).toBe('grant:expired')
    expect(statusOf(uri)).toBeUndefined()
  })

  it('maxJobSeconds caps a replica’s wall time', async () => {
    const { rex } = await recipientWithGrant('rexwall', { maxJobSeconds: 2 })
    const uri = await submit(rex, { command: ['sleep', '300'], timeoutSeconds: 600 })
    const done = await until(uri, (s) => s.state === 'failed', 'killed at the grant’s wall time')
    expect(done.message).toBe('timed out after 2s')
  })

  it('revoke with drain: the running replica may finish within the grace, then ends stopped with the reason, and is not placed again', async () => {
    const g = await recipientWithGrant('rexdrain', { drainGraceSeconds: 2 })
    const uri = await submit(g.rex, { command: ['sleep', '300'] })
    await until(uri, (s) => s.state === 'running', 'running before the revoke')
    await updateGrant(g, { revokedAt: nowIso() })
    const stopped = await until(uri, (s) => s.state === 'stopped', 'stopped at the end of the grace')
    expect(stopped.message).toBe('share grant revoked; drain grace of 2 s over')
    expect(containersOf(uri)).toEqual([])
    // final: counted as finished where it ran, never placed again
    await daemon.ctx.engine.idle()
    expect(placement(uri)).toMatchObject({ phase: 'placed', selected: [expect.objectContaining({ meshlet: lender.meshlet.did, via: 'finished' })] })
    // and no new work under the revoked grant
    const after = await submit(g.rex, { command: ['echo', 'never'] })
    await waitFor(() => placement(after).phase === 'queued', { what: 'queued after the revoke', ...WAIT })
    expect(whyNot(after)).toBe('grant:revoked')
  })

  it('revoke with kill: the running replica stops at once, stopped with the reason', async () => {
    const g = await recipientWithGrant('rexkill', { onRevoke: 'kill', drainGraceSeconds: 3600 })
    const uri = await submit(g.rex, { command: ['sleep', '300'] })
    await until(uri, (s) => s.state === 'running', 'running before the revoke')
    await updateGrant(g, { revokedAt: nowIso() })
    const stopped = await until(uri, (s) => s.state === 'stopped', 'stopped by the kill')
    expect(stopped.message).toBe('share grant revoked (kill)')
    expect(containersOf(uri)).toEqual([])
  })

  it('a deleted grant counts as revoked with kill', async () => {
    const g = await recipientWithGrant('rexdeleted', { drainGraceSeconds: 3600 })
    const uri = await submit(g.rex, { command: ['sleep', '300'] })
    await until(uri, (s) => s.state === 'running', 'running before the delete')
    await lender.owner.writer.delete(COLLECTIONS.shareGrant, g.rkey)
    const stopped = await until(uri, (s) => s.state === 'stopped', 'stopped after the grant is deleted')
    expect(stopped.message).toBe('share grant revoked (kill)')
    expect(containersOf(uri)).toEqual([])
  })
})

describe('the disk floor: the meshlet’s own decline (real statfs, real PDS)', () => {
  let owner: DevAccount
  let meshlet: DevAccount
  const closers: (() => Promise<void>)[] = []
  beforeAll(async () => {
    owner = await net.createAccount('diskowner')
    meshlet = await net.createAccount('diskmesh')
  })
  afterAll(async () => {
    for (const c of closers) await c()
  })

  const iso = (ms: number) => new Date(ms).toISOString()

  /** A meshlet's engine over the owner's own meshlet, its disk read from a real directory with the given floor. */
  function engineWith(floorMiB: number, extra: { grant?: Partial<ShareGrantRecord>; recipient?: string } = {}) {
    const now = Date.now()
    const total = { cpuMillis: 4000, memoryMiB: 8192, storageMiB: 4096 }
    const author = extra.recipient ?? owner.did
    const rkey = `3kdisk${String(closers.length).padStart(7, 'a')}`
    const workload = rec('commune.scheduler.workload', author, rkey, { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 256, storageMiB: 10 }, replicas: 1, createdAt: iso(now) })
    const state = stateOf([
      rec('commune.scheduler.meshletOwner', meshlet.did, 'self', { owner: owner.did, createdAt: iso(now - 100_000) }),
      rec('commune.scheduler.meshlet', owner.did, meshlet.did, { meshlet: meshlet.did, createdAt: iso(now - 100_000) }),
      rec('commune.scheduler.capacity', meshlet.did, 'self', { total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: 300, onlineSince: iso(now - 60_000), updatedAt: iso(now - 1000) }),
      ...(extra.grant ? [rec('commune.scheduler.shareGrant', owner.did, rkey, { meshlet: meshlet.did, recipient: author, tier: 'a', createdAt: iso(now - 1000), ...extra.grant })] : []),
      workload,
    ])
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-disk-'))
    const db = new LocalDb(path.join(dir, 'meshlet.sqlite'))
    const outbox = new Outbox({ db, writer: meshlet.writer, logger: silentLogger() })
    const engine = new PlacementEngine({
      did: meshlet.did,
      state,
      outbox,
      logger: silentLogger(),
      allocatable: () => total,
      drivers: ['docker'],
      isDraining: () => false,
      onlineSince: () => now - 60_000,
      disk: diskReader(dir, floorMiB),
    })
    closers.push(async () => {
      await engine.close()
      await outbox.close()
      db.close()
    })
    engine.start()
    const answer = () => waitFor(() => [...state.bids.values()].find((b) => b.did === meshlet.did)?.record, { what: 'the meshlet’s answer', ...WAIT })
    return { engine, answer, dir }
  }

  it('reads the data disk, with the default floor max(20 %, 50 GiB), configurable down to 0', () => {
    const disk = readDisk(os.tmpdir())!
    expect(disk.totalMiB).toBeGreaterThan(0)
    expect(disk.freeMiB).toBeGreaterThanOrEqual(0)
    expect(disk.floorMiB).toBe(Math.max(Math.ceil(disk.totalMiB * 0.2), 50 * 1024))
    expect(diskFloorMiB(1_000_000)).toBe(200_000)
    expect(diskFloorMiB(100_000)).toBe(51_200)
    expect(diskFloorMiB(100_000, 0)).toBe(0)
    expect(readDisk(os.tmpdir(), 123)!.floorMiB).toBe(123)
    expect(readDisk('/no/such/dir')).toBeUndefined()
  })

  it('declines new work with the reason when free disk would fall under the floor, and says why it declines', async () => {
    const free = readDisk(os.tmpdir())!.freeMiB
    // a floor far above what is free, whatever else writes to this disk meanwhile
    const { engine, answer } = engineWith(free + 100 * 1024)
    const a = await answer()
    expect(a.decline).toBe(true)
    expect(a.reason).toMatch(/^disk floor: \d+ MiB free, floor \d+ MiB$/)
    expect(engine.declining()).toMatch(/^disk floor: /)
    expect(engine.disk()).toMatchObject({ floorMiB: free + 100 * 1024 })
  })

  it('takes work when the floor allows it', async () => {
    const { engine, answer } = engineWith(0)
    const a = await answer()
    expect(a.decline).toBeUndefined()
    expect(engine.declining()).toBeUndefined()
  })

  it('a grant’s minFreeDiskMiB raises the floor for its recipient’s work', async () => {
    const rex = await net.createAccount('diskrex')
    const free = readDisk(os.tmpdir())!.freeMiB
    const { answer } = engineWith(0, { recipient: rex.did, grant: { minFreeDiskMiB: free + 100 * 1024 } })
    const a = await answer()
    expect(a.decline).toBe(true)
    expect(a.reason).toMatch(/^disk floor: \d+ MiB free, floor \d+ MiB$/)
  })
})

describe('trust tier profiles (real Docker)', () => {
  const MESHLET = `did:plc:tiertest${Date.now().toString(36)}`
  let driver: DockerDriver
  let n = 0
  beforeAll(async () => {
    driver = new DockerDriver({ meshletDid: MESHLET })
  })
  afterAll(async () => {
    await driver?.close()
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MESHLET}=${MESHLET}`] } })
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })))
  })

  const spec = (over: Partial<ReplicaSpec>): ReplicaSpec => ({
    workloadUri: `at://did:plc:owner/commune.scheduler.workload/tier${Date.now().toString(36)}${n++}`,
    replica: 0,
    meshletDid: MESHLET,
    image: IMAGE,
    cpuMillis: 250,
    memoryMiB: 64,
    ...over,
  })

  /** Runs a command to its end; its exit code says which check failed. */
  async function run(s: ReplicaSpec): Promise<ReplicaInfo & { logs: string }> {
    const exited = new Promise<ReplicaInfo>((resolve) => {
      const off = driver.onExit((info) => {
        if (info.workloadUri !== s.workloadUri) return
        off()
        resolve(info)
      })
    })
    const started = await driver.start(s)
    expect(started.state).toBe('running')
    const info = await exited
    const logs = driver.logs(s.workloadUri, 0)?.data ?? ''
    await driver.stop(s.workloadUri, 0)
    return { ...info, logs }
  }

  it('tier a cannot write its root filesystem and has no network', async () => {
    const script = [
      'if (echo x > /probe) 2>/dev/null; then echo root-writable; exit 1; fi',
      '[ "$(ls /sys/class/net)" = lo ] || { ls /sys/class/net; exit 2; }',
      '[ "$(id -u)" = 65534 ] || exit 3',
      'echo ok',
    ].join('; ')
    const info = await run(spec({ tier: 'a', command: ['sh', '-c', script] }))
    expect({ exit: info.exitCode, logs: info.logs.trim() }).toEqual({ exit: 0, logs: 'ok' })
  })

  it('tier b writes /scratch within its storage, has a network, and still cannot write its root', async () => {
    const script = [
      '(echo hi > /scratch/f) 2>/dev/null && [ "$(cat /scratch/f)" = hi ] || exit 1',
      'if (echo x > /probe) 2>/dev/null; then exit 2; fi',
      'ls /sys/class/net | grep -qv "^lo$" || exit 3',
      '[ "$(id -u)" = 65534 ] || exit 4',
      // the scratch is no bigger than asked: writing past it fails
      'if dd if=/dev/zero of=/scratch/big bs=1M count=24 2>/dev/null; then exit 5; fi',
      'echo ok',
    ].join('; ')
    const info = await run(spec({ tier: 'b', storageMiB: 16, memoryMiB: 128, command: ['sh', '-c', script] }))
    expect({ exit: info.exitCode, logs: info.logs.trim() }).toEqual({ exit: 0, logs: 'ok' })
  })

  it('tier c is a full container: root, writable, but never privileged', async () => {
    const s = spec({ tier: 'c', command: ['sh', '-c', '[ "$(id -u)" = 0 ] && echo x > /probe && echo ok'] })
    const info = await run(s)
    expect({ exit: info.exitCode, logs: info.logs.trim() }).toEqual({ exit: 0, logs: 'ok' })
    const config = containerConfig(s, { name: 'x' })
    expect(config.HostConfig?.Privileged).toBe(false)
    expect(config.HostConfig?.Binds).toEqual([])
  })
})

describe('GPU device ids', () => {
  it('the allocator hands each replica distinct devices and takes them back when it ends', () => {
    const gpus = new GpuAllocator([0, 1, 2, 3])
    expect(gpus.allocate('w#0', 1)).toEqual([0])
    expect(gpus.allocate('w#1', 2)).toEqual([1, 2])
    // asking again for the same replica gives the same devices
    expect(gpus.allocate('w#0', 1)).toEqual([0])
    expect(gpus.allocate('w#2', 2)).toBeUndefined()
    expect(gpus.free()).toEqual([3])
    gpus.release('w#1')
    expect(gpus.allocate('w#2', 2)).toEqual([1, 2])
    // a container adopted after a restart keeps its devices
    const after = new GpuAllocator([0, 1])
    after.claim('old#0', [1])
    expect(after.allocate('new#0', 1)).toEqual([0])
    expect(after.allocate('new#1', 1)).toBeUndefined()
  })

  it('however replicas come and go (a seeded random run), no device is ever held twice', () => {
    const gpus = new GpuAllocator([0, 1, 2])
    const held = new Map<string, number[]>()
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (let i = 0; i < 500; i++) {
      const key = `w#${next() % 6}`
      if (held.has(key) && next() % 2) {
        gpus.release(key)
        held.delete(key)
      } else if (!held.has(key)) {
        const ids = gpus.allocate(key, 1 + (next() % 2))
        if (ids) held.set(key, ids)
      }
      const all = [...held.values()].flat()
      expect(new Set(all).size).toBe(all.length)
    }
  })

  it('docker asks for the allocated devices by id, never by count', () => {
    const s: ReplicaSpec = { workloadUri: 'at://did:plc:o/commune.scheduler.workload/g', replica: 0, meshletDid: 'did:plc:m', image: IMAGE, cpuMillis: 100, memoryMiB: 64, gpus: 2 }
    const config = containerConfig(s, { name: 'x', gpuIds: [1, 3] })
    expect(config.HostConfig?.DeviceRequests).toEqual([{ Driver: 'nvidia', DeviceIDs: ['1', '3'], Capabilities: [['gpu']] }])
    expect(containerConfig({ ...s, gpus: 0 }, { name: 'x' }).HostConfig?.DeviceRequests).toBeUndefined()
  })

  it('a replica asking for more GPUs than are free fails to start with the reason, holding nothing', async () => {
    const driver = new DockerDriver({ meshletDid: `did:plc:gputest${Date.now().toString(36)}`, gpus: [] })
    const info = await driver.start({ workloadUri: 'at://did:plc:o/commune.scheduler.workload/g1', replica: 0, meshletDid: 'did:plc:m', image: IMAGE, cpuMillis: 100, memoryMiB: 64, gpus: 1 })
    expect(info).toMatchObject({ state: 'failed', message: 'needs 1 GPU(s), 0 free' })
    await driver.close()
  })
})
