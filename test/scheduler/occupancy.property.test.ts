// Occupancy: how many replicas a meshlet's status records say it held at a moment, which
// ranks a full meshlet after those with room (docs/protocol.md, "Candidates and their order").
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { WorkloadStatusRecord } from '../../src/records/index.js'
import { statusRecordKey } from '../../src/scheduler/hash.js'
import { rankCandidates, SETTLE_MS } from '../../src/scheduler/placement.js'
import { isEnded } from '../../src/scheduler/replica.js'
import { cid, did, rec, stateOf, T0, worldArb, type Rec } from './world.js'

const iso = (ms: number) => new Date(ms).toISOString()
const MESHLETS = [0, 1, 2].map((i) => did(`occupancy-meshlet${i}`))
const OWNER = did('occupancy-owner')
const workloadUri = (k: number) => `at://${OWNER}/commune.scheduler.workload/3kocc${k}`

type Version = Pick<WorkloadStatusRecord, 'state' | 'startedAt' | 'finishedAt' | 'exitCode'>

/** A status record's version: scheduled (no start yet), running, or ended in one of the ways a replica ends. */
const versionArb: fc.Arbitrary<Version> = fc
  .record({
    kind: fc.constantFrom('scheduled', 'running', 'succeeded', 'failed', 'yielded', 'stopped'),
    start: fc.integer({ min: -50, max: 50 }),
    length: fc.integer({ min: 0, max: 40 }),
    withFinish: fc.boolean(),
  })
  .map(({ kind, start, length, withFinish }) => {
    const startedAt = iso(T0 + start * 1000)
    if (kind === 'scheduled') return { state: kind }
    if (kind === 'running') return { state: kind, startedAt }
    const finishedAt = withFinish ? { finishedAt: iso(T0 + (start + length) * 1000) } : {}
    return { state: kind, startedAt, ...finishedAt, ...(kind === 'succeeded' ? { exitCode: 0 } : {}) }
  })

const statusRec = (meshlet: number, workload: number, replica: number, v: Version, updatedAt: number): Rec => {
  const uri = workloadUri(workload)
  return rec('commune.scheduler.workloadStatus', MESHLETS[meshlet], statusRecordKey(uri, replica), { workload: { uri, cid: cid(uri) }, replica, ...v, updatedAt: iso(updatedAt) })
}

/** The definition: a replica held its place from startedAt until finishedAt (or, ended without one, its last update). */
function heldAt(r: WorkloadStatusRecord, at: number): boolean {
  if (!r.startedAt) return false
  const start = Date.parse(r.startedAt)
  const endedAt = r.finishedAt ?? (isEnded(r) ? r.updatedAt : undefined)
  const end = endedAt === undefined ? Infinity : Math.max(start, Date.parse(endedAt))
  return start <= at && at < end
}

describe('occupancy', () => {
  it('property: the kept index counts what a scan of the status records gives, through updates, deletes and retirement in any order', () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), meshlet: fc.nat(2), workload: fc.nat(3), replica: fc.nat(1), version: versionArb, at: fc.nat(100) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), meshlet: fc.nat(2), workload: fc.nat(3), replica: fc.nat(1) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('retire' as const), workload: fc.nat(3) }) },
    )
    let counted = 0
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(fc.integer({ min: -60, max: 100 }), { minLength: 1, maxLength: 8 }), (ops, probes) => {
        const workloads = [0, 1, 2, 3].map((k) =>
          rec('commune.scheduler.workload', OWNER, `3kocc${k}`, { image: 'busybox', resources: { cpuMillis: 100, memoryMiB: 64 }, replicas: 1, createdAt: iso(T0 - 100_000) }),
        )
        const state = stateOf(workloads)
        // the records as their repos hold them: a retired workload's statuses stay there
        const repos = new Map<string, WorkloadStatusRecord & { did: string }>()
        const retired = new Set<number>()
        for (const o of ops) {
          if (o.kind === 'retire') {
            if (state.retire(workloadUri(o.workload))) retired.add(o.workload)
            continue
          }
          const r = statusRec(o.meshlet, o.workload, o.replica, o.kind === 'put' ? o.version : { state: 'running' }, T0)
          if (o.kind === 'delete') {
            state.delete(r.collection, r.stored.did, r.stored.rkey)
            repos.delete(r.stored.uri)
            continue
          }
          const stored = statusRec(o.meshlet, o.workload, o.replica, o.version, T0 + o.at * 1000).stored
          state.put('commune.scheduler.workloadStatus', stored as never)
          // a retired workload's records are not read again (nothing about it can change placement)
          if (!retired.has(o.workload)) repos.set(stored.uri, { ...(stored.record as WorkloadStatusRecord), did: stored.did })
        }
        for (const p of probes) {
          const at = T0 + p * 1000
          for (const m of MESHLETS) {
            const expected = [...repos.values()].filter((r) => r.did === m && heldAt(r, at)).length
            if (expected > 0) counted++
            expect(state.activeReplicasAt(m, at)).toBe(expected)
          }
        }
      }),
      { numRuns: 400 },
    )
    expect(counted).toBeGreaterThan(100) // not vacuous
  })

  it('property: a ranking reads settled statuses only — a view that has each status only as it stood a settled while before the workload ranks the same', () => {
    const T = T0 - SETTLE_MS
    const replicaArb = fc.record({
      meshlet: fc.nat(8),
      start: fc.integer({ min: -400, max: 100 }),
      length: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
    })
    let changedRank = 0
    fc.assert(
      fc.property(worldArb, fc.array(replicaArb, { maxLength: 30 }), (world, replicas) => {
        const full: Rec[] = []
        const settled: Rec[] = []
        replicas.forEach((r, k) => {
          if (r.meshlet >= world.meshlets.length) return
          const uri = `at://${world.owners[0]}/commune.scheduler.workload/3kother${k}`
          const start = T + r.start * 1000
          const end = r.length === undefined ? undefined : start + r.length * 1000
          const status = (v: Version, updatedAt: number) =>
            rec('commune.scheduler.workloadStatus', world.meshlets[r.meshlet], statusRecordKey(uri, 0), { workload: { uri, cid: cid(uri) }, replica: 0, ...v, updatedAt: iso(updatedAt) })
          const running = status({ state: 'running', startedAt: iso(start) }, start)
          const now = end === undefined ? running : status({ state: 'succeeded', exitCode: 0, startedAt: iso(start), finishedAt: iso(end) }, end)
          full.push(now)
          // what had surely reached everyone by the workload's createdAt: nothing stamped after T
          if (start > T) settled.push(status({ state: 'scheduled' }, T))
          else settled.push(end !== undefined && end <= T ? now : running)
        })
        const w = world.workload.stored as Parameters<typeof rankCandidates>[1]
        const ranked = rankCandidates(stateOf([...world.records, world.workload, ...full]), w).candidates
        expect(rankCandidates(stateOf([...world.records, world.workload, ...settled]), w).candidates).toEqual(ranked)
        if (JSON.stringify(rankCandidates(stateOf([...world.records, world.workload]), w).candidates) !== JSON.stringify(ranked)) changedRank++
      }),
      { numRuns: 400 },
    )
    expect(changedRank).toBeGreaterThan(20) // not vacuous: occupancy reordered candidates in many runs
  })
})
