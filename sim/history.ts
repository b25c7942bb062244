// How one meshlet's cost grows with history (issue 13, item 2): a commune of `meshlets`
// members in one cluster, seen from one member's PublicState, fed finished workloads (the
// workload, an offer, the finished status: what fair share counts) up to `finished`. At
// checkpoints it measures what an event costs (a record put, then place() of the workload
// it concerns, as the engine does) for a fresh workload and for a heartbeat, and the heap.
// Deterministic in what it builds; the times and the heap are the machine's.
import { retire } from '../src/scheduler/fairshare.js'
import { place } from '../src/scheduler/placement.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { PublicState, type Stored } from '../src/scheduler/state.js'
import type { Collection } from '../src/records/index.js'
import { cid, did, mulberry32, T0 } from '../test/scheduler/world.js'

export interface HistoryOptions {
  meshlets: number
  finished: number
  seed: number
  /** Finished workloads older than this (simulated ms) are retired, as the daemon does after its retention; none when undefined. */
  retentionMs?: number
  progress?: (line: string) => void
}

export interface HistoryPoint {
  finishedWorkloads: number
  /** Median µs to take a new workload record and place it. */
  newWorkloadMicros: number
  /** Median µs to take a heartbeat and place a workload that is placing. */
  heartbeatMicros: number
  heapMiB: number
  /** Workloads still in memory (the rest retired). */
  inMemory: number
}

const iso = (ms: number) => new Date(ms).toISOString()
const SAMPLES = 41

export function history(opts: HistoryOptions): { meshlets: number; finished: number; seed: number; retentionSeconds: number | null; curve: HistoryPoint[] } {
  const rand = mulberry32(opts.seed)
  const owners = Array.from({ length: opts.meshlets }, (_, i) => did(`history-owner-${i}`))
  const meshlets = Array.from({ length: opts.meshlets }, (_, i) => did(`history-meshlet-${i}`))
  const state = new PublicState()
  const put = (collection: Collection, repo: string, rkey: string, record: Record<string, unknown>) => {
    const uri = `at://${repo}/${collection}/${rkey}`
    const stored: Stored<unknown> = { uri, cid: cid(`${uri}${JSON.stringify(record)}`), did: repo, rkey, record: { $type: collection, ...record } }
    state.put(collection, stored as never)
    return stored
  }
  // everyone in one cluster; all heartbeating, each with room for 4 replicas
  let clock = T0
  const heartbeat = (i: number, at: number) =>
    put('commune.scheduler.capacity', meshlets[i], 'self', {
      total: { cpuMillis: 4000, memoryMiB: 4096 },
      allocatable: { cpuMillis: 4000, memoryMiB: 4096 },
      drivers: ['docker'],
      arch: 'amd64',
      heartbeatSeconds: 300,
      onlineSince: iso(T0 - 86_400_000),
      updatedAt: iso(at),
    })
  meshlets.forEach((m, i) => {
    put('commune.scheduler.meshletOwner', m, 'self', { owner: owners[i], createdAt: iso(T0 - 86_400_000) })
    put('commune.scheduler.meshlet', owners[i], m, { meshlet: m, createdAt: iso(T0 - 86_400_000) })
    put('commune.scheduler.cluster', m, 'c', { members: owners.filter((_, j) => j !== i), createdAt: iso(T0 - 86_400_000) })
    heartbeat(i, clock)
  })

  let seq = 0
  const workload = (owner: number, at: number) => {
    const rkey = `3kh${String(seq++).padStart(10, 'a')}`
    return put('commune.scheduler.workload', owners[owner], rkey, { image: 'busybox', resources: { cpuMillis: 1000, memoryMiB: 256 }, replicas: 1, createdAt: iso(at) })
  }
  const finishedOne = () => {
    const o = Math.floor(rand() * opts.meshlets)
    const m = (o + 1 + Math.floor(rand() * (opts.meshlets - 1))) % opts.meshlets
    const createdAt = clock
    const w = workload(o, createdAt)
    const ref = { uri: w.uri, cid: w.cid }
    put('commune.scheduler.bid', meshlets[m], `3kb${String(seq).padStart(10, 'a')}`, { workload: ref, round: 0, score: 1000, createdAt: iso(createdAt + 300) })
    const finishedAt = createdAt + 10_000 + Math.floor(rand() * 300_000)
    put('commune.scheduler.workloadStatus', meshlets[m], statusRecordKey(w.uri, 0), {
      workload: ref,
      replica: 0,
      state: 'succeeded',
      exitCode: 0,
      cpuMillis: Math.floor((finishedAt - createdAt) * rand()),
      startedAt: iso(createdAt + 500),
      finishedAt: iso(finishedAt),
      updatedAt: iso(finishedAt),
    })
    clock += 2_000
    live.push({ uri: w.uri, finishedAt })
    while (opts.retentionMs !== undefined && live.length && live[0].finishedAt + opts.retentionMs <= clock) retire(state, live.shift()!.uri)
  }
  const live: { uri: string; finishedAt: number }[] = []

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const measure = (): Omit<HistoryPoint, 'finishedWorkloads'> => {
    const fresh: number[] = []
    const beats: number[] = []
    for (let k = 0; k < SAMPLES; k++) {
      const t0 = performance.now()
      const w = workload(k % opts.meshlets, clock + 120_000)
      place(state, w.uri, clock + 120_500)
      fresh.push(performance.now() - t0)
      const t1 = performance.now()
      heartbeat(k % opts.meshlets, clock + 121_000 + k)
      place(state, w.uri, clock + 121_000 + k)
      beats.push(performance.now() - t1)
      state.delete('commune.scheduler.workload', w.did, w.rkey)
    }
    ;(globalThis as { gc?: () => void }).gc?.()
    return {
      newWorkloadMicros: Math.round(median(fresh) * 1000),
      heartbeatMicros: Math.round(median(beats) * 1000),
      heapMiB: Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10,
      inMemory: state.workloads.size,
    }
  }

  const checkpoints = [0, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000].filter((n) => n <= opts.finished)
  if (checkpoints.at(-1) !== opts.finished) checkpoints.push(opts.finished)
  const curve: HistoryPoint[] = []
  measure() // warm-up: the first calls pay for compilation, not for history
  let done = 0
  for (const at of checkpoints) {
    while (done < at) {
      finishedOne()
      done++
    }
    const point = { finishedWorkloads: done, ...measure() }
    curve.push(point)
    opts.progress?.(`history ${JSON.stringify(point)}`)
  }
  return { meshlets: opts.meshlets, finished: opts.finished, seed: opts.seed, retentionSeconds: opts.retentionMs === undefined ? null : opts.retentionMs / 1000, curve }
}
