// The placement engine's reconcile() against a driver whose timing the test holds by
// hand: a start that completes while the listing is in flight is not a vanished
// container (it used to be reported could-not-run, so the replica moved elsewhere while
// its container kept running here); a container that really vanished still is.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PlacementEngine } from '../src/daemon/engine.js'
import { LocalDb } from '../src/db/index.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec } from '../src/executor/types.js'
import type { WorkloadStatusRecord } from '../src/records/index.js'
import { Outbox } from '../src/repo/outbox.js'
import { place } from '../src/scheduler/placement.js'
import { statusUri } from '../src/scheduler/replica.js'
import { silentLogger } from '../src/util/logger.js'
import { waitFor } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { rec, stateOf } from './scheduler/world.js'

const WAIT = { timeoutMs: 30_000 }

interface Gate {
  promise: Promise<void>
  open: () => void
}
function gate(): Gate {
  let open!: () => void
  const promise = new Promise<void>((r) => (open = r))
  return { promise, open }
}

/** Starts wait for `startGate`, listings for `listGate`; nothing is ever listed (the listing predates any container). */
class GatedDriver implements Driver {
  readonly name = 'docker' as const
  startGate?: Promise<void>
  listGate?: Promise<void>
  readonly started: ReplicaSpec[] = []
  readonly stopped: string[] = []
  listings = 0

  async start(spec: ReplicaSpec): Promise<ReplicaInfo> {
    this.started.push(spec)
    await this.startGate
    return { ...spec, id: `c${this.started.length}`, state: 'running', startedAt: new Date().toISOString() }
  }
  async stop(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined> {
    this.stopped.push(replicaKey(workloadUri, replica))
    return undefined
  }
  async inspect(): Promise<ReplicaInfo | undefined> {
    return undefined
  }
  logs(): undefined {
    return undefined
  }
  async listOwn(): Promise<ReplicaInfo[]> {
    this.listings++
    await this.listGate
    return []
  }
  async release(): Promise<void> {}
  async adopt(_spec: ReplicaSpec, found: ReplicaInfo): Promise<ReplicaInfo> {
    return found
  }
  exit?: (info: ReplicaInfo) => void
  onExit(listener: (info: ReplicaInfo) => void): () => void {
    this.exit = listener
    return () => undefined
  }
  async close(): Promise<void> {}
}

let net: DevNetwork
let owner: DevAccount
let meshlet: DevAccount
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  net = await startNetwork()
  owner = await net.createAccount('engowner')
  meshlet = await net.createAccount('engmesh')
}, 120_000)

afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  await net?.close()
}, 60_000)

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * The owner's own meshlet and one workload of one replica, its records put straight into
 * the state (the engine reads only the state); the engine's own writes go to the real PDS.
 */
function setup(rkey: string) {
  const now = Date.now()
  const onlineSince = now - 60_000
  const total = { cpuMillis: 4000, memoryMiB: 8192 }
  const workload = rec('commune.scheduler.workload', owner.did, rkey, { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 256 }, replicas: 1, createdAt: iso(now) })
  const state = stateOf([
    rec('commune.scheduler.meshletOwner', meshlet.did, 'self', { owner: owner.did, createdAt: iso(now - 100_000) }),
    rec('commune.scheduler.meshlet', owner.did, meshlet.did, { meshlet: meshlet.did, createdAt: iso(now - 100_000) }),
    rec('commune.scheduler.cluster', meshlet.did, 'c', { members: [], createdAt: iso(now - 100_000) }),
    rec('commune.scheduler.capacity', meshlet.did, 'self', { total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: 300, onlineSince: iso(onlineSince), updatedAt: iso(now - 1000) }),
    workload,
  ])
  const db = new LocalDb(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'engine-')), 'meshlet.sqlite'))
  const outbox = new Outbox({ db, writer: meshlet.writer, logger: silentLogger(), minBackoffMs: 20, maxBackoffMs: 200 })
  const enqueued = vi.spyOn(outbox, 'enqueue')
  const driver = new GatedDriver()
  const engine = new PlacementEngine({
    did: meshlet.did,
    state,
    outbox,
    logger: silentLogger(),
    driver,
    allocatable: () => total,
    drivers: ['docker'],
    isDraining: () => false,
    onlineSince: () => onlineSince,
  })
  cleanups.push(async () => {
    await engine.close()
    await outbox.close()
    db.close()
  })
  const uri = workload.stored.uri
  return {
    uri,
    key: replicaKey(uri, 0),
    state,
    driver,
    engine,
    status: () => state.statuses.get(statusUri(meshlet.did, uri, 0))?.record,
    /** Every status this meshlet queued for the replica, in order. */
    statesWritten: () =>
      enqueued.mock.calls
        .flatMap(([writes]) => writes.map((w) => w.record as WorkloadStatusRecord))
        .filter((r) => r.workload?.uri === uri && r.state !== undefined)
        .map((r) => r.state),
  }
}

/** Lets the engine answer, checks the placement gives it the replica, and has it act on that. */
async function placeHere(s: ReturnType<typeof setup>): Promise<void> {
  s.engine.start()
  await waitFor(() => [...s.state.bids.values()].some((b) => b.did === meshlet.did), { what: 'the bid', ...WAIT })
  expect(place(s.state, s.uri, Date.now())?.confirmed).toEqual([meshlet.did])
  // stands in for the firehose echo of our own bid (no firehose here)
  s.engine.markDirty(s.uri)
  await waitFor(() => s.driver.started.length === 1, { what: 'the start', ...WAIT })
}

describe('PlacementEngine.reconcile', () => {
  it('a start that completes while the containers are being listed is not counted vanished', async () => {
    const s = setup('3kengrace0000')
    const startGate = gate()
    const listGate = gate()
    s.driver.startGate = startGate.promise
    s.driver.listGate = listGate.promise
    await placeHere(s)

    const reconciled = s.engine.reconcile()
    await waitFor(() => s.driver.listings === 1, { what: 'the listing to begin', ...WAIT })
    // the start completes (and is recorded running) before the listing, taken without it, returns
    startGate.open()
    await waitFor(() => s.status()?.state === 'running', { what: 'the running status', ...WAIT })
    listGate.open()
    expect(await reconciled).toEqual({ adopted: 0, removed: 0, vanished: 0 })
    await s.engine.idle()

    expect(s.statesWritten()).not.toContain('failed')
    expect(s.status()?.state).toBe('running')
    expect(s.driver.stopped).not.toContain(s.key)
    expect(place(s.state, s.uri, Date.now())?.selected).toMatchObject([{ meshlet: meshlet.did, replicas: 1, via: 'held' }])
  })

  it('a container tracked as running and absent from the listing is vanished, and reported could-not-run', async () => {
    const s = setup('3kenggone0000')
    await placeHere(s)
    await waitFor(() => s.status()?.state === 'running', { what: 'the running status', ...WAIT })
    await s.engine.idle()

    expect(await s.engine.reconcile()).toEqual({ adopted: 0, removed: 0, vanished: 1 })
    await s.engine.idle()

    const status = s.status()!
    expect(status.state).toBe('failed')
    expect(status.exitCode).toBeUndefined()
    expect(status.message).toMatch(/^could not run/)
    expect(s.driver.stopped).toContain(s.key)
  })
})

describe('PlacementEngine.retireFinished', () => {
  it('forgets a finished workload only after its retention, and a replayed copy of it starts nothing', async () => {
    const s = setup('3kengretire00')
    await placeHere(s)
    await waitFor(() => s.status()?.state === 'running', { what: 'the running status', ...WAIT })
    const spec = s.driver.started[0]
    s.driver.exit!({ ...spec, id: 'c1', state: 'exited', exitCode: 0, startedAt: iso(Date.now() - 1000), finishedAt: iso(Date.now()) })
    await waitFor(() => s.status()?.state === 'succeeded', { what: 'the finished status', ...WAIT })
    await s.engine.idle()
    const workload = s.state.workloads.get(s.uri)!

    // not before its retention is over
    expect(s.engine.retireFinished(3_600_000)).toBe(0)
    expect(s.state.workloads.has(s.uri)).toBe(true)
    expect(s.engine.retireFinished(0)).toBe(1)
    expect(s.state.workloads.has(s.uri)).toBe(false)
    expect(s.state.statusesFor(s.uri)).toEqual([])

    // the firehose replays the workload and its records: nothing comes back, nothing starts
    expect(s.state.put('commune.scheduler.workload', workload)).toBe(false)
    s.engine.markDirty(s.uri)
    await s.engine.idle()
    expect(s.driver.started).toHaveLength(1)
    expect(place(s.state, s.uri, Date.now())).toBeUndefined()
  })
})
