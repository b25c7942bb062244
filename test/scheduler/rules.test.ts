// Example-based rules of the placement core, one behaviour each.
import { describe, expect, it } from 'vitest'
import { place } from '../../src/scheduler/placement.js'
import { clusterMembership, acceptsWorkFrom } from '../../src/scheduler/membership.js'
import { PublicState } from '../../src/scheduler/state.js'
import { cid, did, rec, T0, WINDOW, type Rec } from './world.js'
import type { CapacityRecord, WorkloadRecord } from '../../src/records/index.js'

const iso = (ms: number) => new Date(ms).toISOString()
const O = ['ann', 'ben', 'cat', 'dan'].map((n) => did(`rules-${n}`))
const M = ['ann', 'ben', 'cat', 'dan'].map((n) => did(`rules-${n}-mesh`))

function commune(opts: { capacity?: (i: number) => Partial<CapacityRecord>; lists?: number[][] } = {}): Rec[] {
  const out: Rec[] = []
  O.forEach((o, i) => {
    out.push(rec('commune.scheduler.meshletOwner', M[i], 'self', { owner: o, createdAt: iso(T0 - 1e5) }))
    out.push(rec('commune.scheduler.meshlet', o, M[i], { meshlet: M[i], createdAt: iso(T0 - 1e5) }))
    const lists = opts.lists?.[i] ?? O.map((_, j) => j).filter((j) => j !== i)
    out.push(rec('commune.scheduler.cluster', M[i], 'c', { members: lists.map((j) => O[j]), createdAt: iso(T0 - 1e5) }))
    const total = { cpuMillis: 4000, memoryMiB: 8192 }
    out.push(rec('commune.scheduler.capacity', M[i], 'self', { total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: 60, updatedAt: iso(T0 - 1000), ...opts.capacity?.(i) }))
  })
  return out
}

function workload(over: Partial<WorkloadRecord> = {}, owner = 0): Rec {
  return rec('commune.scheduler.workload', O[owner], '3kworkloadaaa', { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 256 }, replicas: 1, bidWindowMs: WINDOW, createdAt: iso(T0), ...over })
}

let n = 0
function bid(w: Rec, meshlet: number, over: { at?: number; decline?: boolean; slots?: number; cid?: string; round?: number } = {}): Rec {
  return rec('commune.scheduler.bid', M[meshlet], `3kbid${String(n++).padStart(8, 'a')}`, {
    workload: { uri: w.stored.uri, cid: over.cid ?? w.stored.cid },
    round: over.round ?? 0,
    score: 1,
    ...(over.slots ? { slots: over.slots } : {}),
    ...(over.decline ? { decline: true } : {}),
    createdAt: iso(T0 + (over.at ?? 100)),
  })
}

const build = (...recs: Rec[][]) => {
  const s = new PublicState()
  for (const r of recs.flat()) s.put(r.collection, r.stored)
  return s
}
const after = T0 + WINDOW + 2000

describe('eligibility and feasibility', () => {
  it('the owner’s own meshlet ranks first; non-mutual members are not candidates', () => {
    const w = workload({}, 1)
    // cat lists nobody, so cat is not mutual with ben
    const p = place(build(commune({ lists: [[1, 2, 3], [0, 2, 3], [], [0, 1, 2]] }), [w]), w.stored.uri, T0)!
    expect(p.candidates[0]).toMatchObject({ did: M[1], via: 'own' })
    expect(p.candidates.map((c) => c.did)).not.toContain(M[2])
    expect(acceptsWorkFrom(build(commune({ lists: [[1, 2, 3], [0, 2, 3], [], [0, 1, 2]] })), M[2], O[1])).toBe(false)
  })

  it('reports why a member is not verified', () => {
    const s = build(commune({ lists: [[1, 2], [0], [], []] }))
    const v = clusterMembership(s, M[0])
    expect(v).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ owner: O[1], verified: true }),
        expect.objectContaining({ owner: O[2], verified: false, reason: 'not-mutual' }),
      ]),
    )
  })

  it('infeasible meshlets are never candidates: cpu, memory, arch, driver, labels, gpus', () => {
    const zoneB = [{ key: 'zone', value: 'b' }]
    // each meshlet fails exactly one requirement
    const caps: Partial<CapacityRecord>[] = [
      { total: { cpuMillis: 100, memoryMiB: 8192 }, labels: zoneB },
      { arch: 'arm64', labels: zoneB },
      { drivers: ['process'], labels: zoneB },
      { labels: [{ key: 'zone', value: 'a' }] },
    ]
    const w = workload({ constraints: { labels: zoneB, arch: ['amd64'] } })
    expect(place(build(commune({ capacity: (i) => caps[i] }), [w]), w.stored.uri, T0)!.candidates).toEqual([])
    // and with the one failing requirement fixed, each becomes a candidate
    const fixed = place(build(commune({ capacity: () => ({ labels: zoneB }) }), [w]), w.stored.uri, T0)!
    expect(fixed.candidates).toHaveLength(4)
    const gpu = workload({ resources: { cpuMillis: 100, memoryMiB: 64, gpus: 1 } })
    expect(place(build(commune(), [gpu]), gpu.stored.uri, T0)!.candidates).toEqual([])
  })

  it('a meshlet whose heartbeat was stale when the workload was created is not a candidate', () => {
    const w = workload()
    const p = place(build(commune({ capacity: (i) => (i === 3 ? { updatedAt: iso(T0 - 3600_000) } : {}) }), [w]), w.stored.uri, T0)!
    expect(p.candidates.map((c) => c.did)).not.toContain(M[3])
    expect(p.candidates).toHaveLength(3)
  })

  it('a share grant makes a non-member eligible; an expired or paused grant does not', () => {
    const lists = [[], [], [], []] // nobody is in a cluster with anybody
    const w = workload({}, 0)
    const grant = (over: object) => rec('commune.scheduler.shareGrant', O[1], `3kgrant${n++}aaaaaa`.slice(0, 13), { meshlet: M[1], recipient: O[0], tier: 'a', createdAt: iso(T0 - 1000), ...over })
    const via = (g?: Rec) => place(build(commune({ lists }), [w], g ? [g] : []), w.stored.uri, T0)!.candidates.map((c) => c.did)
    expect(via()).toEqual([M[0]])
    expect(via(grant({}))).toContain(M[1])
    expect(via(grant({ expiresAt: iso(T0 - 1) }))).not.toContain(M[1])
    expect(via(grant({ paused: true }))).not.toContain(M[1])
    expect(via(grant({ allowedImages: ['ghcr.io/'] }))).not.toContain(M[1])
  })

  it('fair share: an owner who consumed more than they served ranks higher', () => {
    const w = workload({}, 3)
    // ben's meshlet ran 200 cpu-seconds of ann's work before: ann owes, ben is owed
    const served = rec('commune.scheduler.workloadStatus', M[1], 'old-0', {
      workload: { uri: `at://${O[0]}/commune.scheduler.workload/3koldoldoldol`, cid: cid('old') },
      replica: 0,
      state: 'succeeded',
      cpuMillis: 200_000,
      finishedAt: iso(T0 - 5000),
      updatedAt: iso(T0 - 5000),
    })
    const p = place(build(commune(), [w, served]), w.stored.uri, T0)!
    const rank = (i: number) => p.candidates.findIndex((c) => c.did === M[i])
    expect(rank(0)).toBeLessThan(rank(1))
    expect(p.candidates[0].did).toBe(M[3]) // own meshlet still first
  })
})

describe('bids, selection and closing', () => {
  it('ignores bids with the wrong cid, the wrong round, outside the window, or from a non-candidate', () => {
    const w = workload()
    const s = build(commune({ lists: [[1, 2], [0], [0], []] }), [w], [
      bid(w, 1, { cid: cid('stale') }),
      bid(w, 1, { round: 1 }),
      bid(w, 2, { at: -10 }),
      bid(w, 2, { at: WINDOW + 1 }),
      bid(w, 3),
    ])
    const p = place(s, w.stored.uri, after)!
    expect(p.rejected.map((r) => r.reason).sort()).toEqual(['after-window', 'before-window', 'not-a-candidate', 'wrong-round', 'wrong-workload-cid'])
    expect(p.selected).toEqual([])
  })

  it('one answer per meshlet counts: the earliest', () => {
    const w = workload({}, 1)
    const s = build(commune(), [w], [bid(w, 0, { at: 500, decline: true }), bid(w, 0, { at: 200 })])
    const p = place(s, w.stored.uri, after)!
    expect(p.answers.find((a) => a.did === M[0])?.accept).toBe(true)
    expect(p.rejected).toEqual([expect.objectContaining({ reason: 'superseded' })])
  })

  it('fast close: when every candidate above the last winner answered, the round closes before the window ends', () => {
    const w = workload()
    const s = build(commune(), [w], [bid(w, 0)])
    const p = place(s, w.stored.uri, T0 + 200)!
    expect(p).toMatchObject({ closed: true, closedBy: 'all-answered', placed: 1 })
    expect(p.selected).toEqual([{ meshlet: M[0], replicas: 1 }])
  })

  it('an unanswered higher-ranked candidate keeps the round open until the window closes it', () => {
    const w = workload({ replicas: 2 })
    const p0 = place(build(commune(), [w]), w.stored.uri, T0)!
    const second = p0.candidates[1].did
    const third = M.indexOf(p0.candidates[2].did)
    const s = build(commune(), [w], [bid(w, 0), bid(w, third)])
    const open = place(s, w.stored.uri, T0 + 500)!
    expect(open.closed).toBe(false)
    expect(open.confirmed).toEqual([M[0]])
    expect(open.invited).toContain(second)
    const closed = place(s, w.stored.uri, T0 + WINDOW + 1000)!
    expect(closed).toMatchObject({ closed: true, closedBy: 'window', placed: 2 })
  })

  it('invites about `replicas` candidates, and the next ones when invitees decline or the half-window passes', () => {
    const w = workload({ replicas: 2 })
    const p0 = place(build(commune(), [w]), w.stored.uri, T0)!
    expect(p0.invited).toHaveLength(2)
    const first = M.indexOf(p0.candidates[0].did)
    const p1 = place(build(commune(), [w], [bid(w, first, { decline: true })]), w.stored.uri, T0 + 10)!
    expect(p1.invited).toHaveLength(2)
    expect(p1.invited).not.toContain(M[first])
    const late = place(build(commune(), [w]), w.stored.uri, T0 + WINDOW / 2 + 1)!
    expect(late.invited).toHaveLength(4)
  })

  it('places partially when there are fewer accepting bids than replicas, and says how many', () => {
    const w = workload({ replicas: 3 })
    const s = build(commune(), [w], [bid(w, 0), bid(w, 1, { decline: true }), bid(w, 2), bid(w, 3, { decline: true })])
    const p = place(s, w.stored.uri, T0 + 500)!
    expect(p).toMatchObject({ closed: true, closedBy: 'all-answered', placed: 2, wanted: 3 })
  })

  it('packing: one meshlet may take several replicas, up to its slots', () => {
    const w = workload({ replicas: 3, allowPacking: true })
    const s = build(commune(), [w], [bid(w, 0, { slots: 2 }), ...[1, 2, 3].map((i) => bid(w, i))])
    const p = place(s, w.stored.uri, after)!
    expect(p.selected[0]).toEqual({ meshlet: M[0], replicas: 2 })
    expect(p.placed).toBe(3)
  })

  it('a deleted workload has no placement', () => {
    const w = workload()
    const s = build(commune(), [w], [bid(w, 0)])
    s.delete('commune.scheduler.workload', w.stored.did, w.stored.rkey)
    expect(place(s, w.stored.uri, after)).toBeUndefined()
  })
})

describe('re-placement', () => {
  const HB = 60_000 // heartbeatSeconds in commune()
  // meshlet 1 stops heartbeating right after the workload is placed on it
  const lossAt = T0 - 1000 + 3 * HB
  const roundBid = (w: Rec, meshlet: number, round: number, at: number) => bid(w, meshlet, { round, at: at - T0 })

  it('replaces the replica of a meshlet whose heartbeat expired, excluding it, keeping survivors', () => {
    const w = workload({ replicas: 2 }, 0)
    const base = build(commune(), [w], [bid(w, 0), bid(w, 1)])
    expect(place(base, w.stored.uri, T0 + 500)!.selected.map((s) => s.meshlet).sort()).toEqual([M[0], M[1]].sort())
    // everyone but meshlet 1 keeps heartbeating
    const fresh = (i: number) => (i === 1 ? {} : { updatedAt: iso(lossAt + 10 * HB) })
    const s = build(commune({ capacity: fresh }), [w], [bid(w, 0), bid(w, 1)])
    const before = place(s, w.stored.uri, lossAt - 1)!
    expect(before.round).toBe(0)
    expect(before.nextDeadline).toBe(lossAt)
    const open = place(s, w.stored.uri, lossAt + 10)!
    expect(open).toMatchObject({ round: 1, closed: false, opensAt: lossAt })
    expect(open.candidates.map((c) => c.did)).not.toContain(M[1])
    expect(open.candidates.map((c) => c.did)).not.toContain(M[0]) // a survivor, and no packing
    expect(open.selected).toEqual([{ meshlet: M[0], replicas: 1 }])
    expect(open.invited).toHaveLength(1)
    const replacement = M.indexOf(open.invited[0])
    const s2 = build(commune({ capacity: fresh }), [w], [bid(w, 0), bid(w, 1), roundBid(w, replacement, 1, lossAt + 100)])
    const done = place(s2, w.stored.uri, lossAt + 200)!
    expect(done).toMatchObject({ round: 1, closed: true, placed: 2 })
    expect(done.selected).toEqual([{ meshlet: M[0], replicas: 1 }, { meshlet: M[replacement], replicas: 1 }])
    // a round-1 bid dated before the loss does not count
    const early = build(commune({ capacity: fresh }), [w], [bid(w, 0), bid(w, 1), roundBid(w, replacement, 1, lossAt - 5)])
    expect(place(early, w.stored.uri, lossAt + 200)!.rejected.map((r) => r.reason)).toContain('before-window')
  })

  it('a meshlet that could not run its replica is replaced at once', () => {
    const w = workload({}, 1)
    const failed = rec('commune.scheduler.workloadStatus', M[1], 'st-0', {
      workload: { uri: w.stored.uri, cid: w.stored.cid },
      replica: 0,
      state: 'failed',
      message: 'image not present and could not be pulled',
      updatedAt: iso(T0 + 1500),
    })
    const p = place(build(commune(), [w], [bid(w, 1), failed]), w.stored.uri, T0 + 1600)!
    expect(p).toMatchObject({ round: 1, opensAt: T0 + 1500, placed: 0 })
    expect(p.candidates.map((c) => c.did)).not.toContain(M[1])
  })

  it('a finished replica is never re-placed, whatever its meshlet does later', () => {
    const w = workload({}, 1)
    const succeeded = rec('commune.scheduler.workloadStatus', M[1], 'st-0', {
      workload: { uri: w.stored.uri, cid: w.stored.cid },
      replica: 0,
      state: 'succeeded',
      exitCode: 0,
      updatedAt: iso(T0 + 1500),
    })
    const p = place(build(commune(), [w], [bid(w, 1), succeeded]), w.stored.uri, T0 + 10 * 3 * HB)!
    expect(p).toMatchObject({ round: 0, placed: 1, nextDeadline: null })
  })

  it('a lost meshlet that comes back regains its place; the replacement yields', () => {
    const w = workload({}, 1)
    const replacementBid = (i: number) => roundBid(w, i, 1, lossAt + 100)
    const gone = build(commune({ capacity: (i) => (i === 1 ? {} : { updatedAt: iso(lossAt + HB) }) }), [w], [bid(w, 1), replacementBid(0)])
    expect(place(gone, w.stored.uri, lossAt + 5000)!.selected).toEqual([{ meshlet: M[0], replicas: 1 }])
    // meshlet 1 heartbeats again: its loss moves later, round 1 never opened by then
    const back = build(commune({ capacity: (i) => ({ updatedAt: iso(i === 1 ? lossAt + 4000 : lossAt + HB) }) }), [w], [bid(w, 1), replacementBid(0)])
    expect(place(back, w.stored.uri, lossAt + 5000)!.selected).toEqual([{ meshlet: M[1], replicas: 1 }])
  })
})
