// Example-based rules of the placement core, one behaviour each.
import { describe, expect, it } from 'vitest'
import { statusRecordKey } from '../../src/scheduler/hash.js'
import { ANSWER_DEADLINE_MS, place, SETTLE_MS } from '../../src/scheduler/placement.js'
import { clusterMembership, acceptsWorkFrom } from '../../src/scheduler/membership.js'
import { PublicState } from '../../src/scheduler/state.js'
import { cid, did, rec, T0, type Rec } from './world.js'
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
  return rec('commune.scheduler.workload', O[owner], '3kworkloadaaa', { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 256 }, replicas: 1, createdAt: iso(T0), ...over })
}

let n = 0
function bid(w: Rec, meshlet: number, over: { at?: number; decline?: boolean; slots?: number; cid?: string; round?: number; reason?: string } = {}): Rec {
  return rec('commune.scheduler.bid', M[meshlet], `3kbid${String(n++).padStart(8, 'a')}`, {
    workload: { uri: w.stored.uri, cid: over.cid ?? w.stored.cid },
    round: over.round ?? 0,
    score: 1,
    ...(over.slots ? { slots: over.slots } : {}),
    ...(over.decline ? { decline: true, reason: over.reason ?? 'no room' } : {}),
    createdAt: iso(T0 + (over.at ?? 100)),
  })
}

const build = (...recs: Rec[][]) => {
  const s = new PublicState()
  for (const r of recs.flat()) s.put(r.collection, r.stored)
  return s
}
const after = T0 + 5000

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
    // ben's meshlet ran 200 cpu-seconds of ann's work before (it offered, then finished): ann owes, ben is owed
    const old = rec('commune.scheduler.workload', O[0], '3koldoldoldol', { image: 'busybox', resources: { cpuMillis: 1000, memoryMiB: 256 }, replicas: 1, createdAt: iso(T0 - 600_000) })
    const ref = { uri: old.stored.uri, cid: old.stored.cid }
    const offer = rec('commune.scheduler.bid', M[1], '3koldbidaaaaa', { workload: ref, round: 0, score: 1, createdAt: iso(T0 - 599_000) })
    const served = rec('commune.scheduler.workloadStatus', M[1], statusRecordKey(old.stored.uri, 0), {
      workload: ref,
      replica: 0,
      state: 'succeeded',
      exitCode: 0,
      cpuMillis: 200_000,
      startedAt: iso(T0 - 598_000),
      finishedAt: iso(T0 - 120_000),
      updatedAt: iso(T0 - 120_000),
    })
    const p = place(build(commune(), [w, old, offer, served]), w.stored.uri, T0)!
    const rank = (i: number) => p.candidates.findIndex((c) => c.did === M[i])
    expect(rank(0)).toBeLessThan(rank(1))
    expect(p.candidates[0].did).toBe(M[3]) // own meshlet still first
  })

  it('a meshlet its settled statuses show full ranks after those with room, even the owner’s own; less room ranks lower', () => {
    // the request fits twice in each meshlet's total (4000 cpu-millis)
    const w = workload({ resources: { cpuMillis: 2000, memoryMiB: 256 } }, 3)
    let k = 0
    const held = (meshlet: number, startedAt: number, finishedAt?: number) => {
      const uri = `at://${O[0]}/commune.scheduler.workload/3kother${k++}`
      return rec('commune.scheduler.workloadStatus', M[meshlet], statusRecordKey(uri, 0), {
        workload: { uri, cid: cid(uri) },
        replica: 0,
        state: finishedAt === undefined ? 'running' : 'succeeded',
        ...(finishedAt === undefined ? {} : { exitCode: 0, finishedAt: iso(finishedAt) }),
        startedAt: iso(startedAt),
        updatedAt: iso(finishedAt ?? startedAt),
      })
    }
    const settled = T0 - SETTLE_MS - 1000
    // dan's own meshlet ran two replicas a settled while before: full, so last
    expect(order(w, [...commune(), held(3, settled - 5000), held(3, settled)]).at(-1)).toBe(3)
    // one of the two started within SETTLE_MS of the workload (views may not all have it yet): not counted
    expect(order(w, [...commune(), held(3, settled - 5000), held(3, T0 - 30_000)])[0]).toBe(3)
    // one finished before the settled moment: not counted either
    expect(order(w, [...commune(), held(3, settled - 5000), held(3, settled - 4000, settled - 2000)])[0]).toBe(3)
    // ann's meshlet has room for one copy left, the others two: ann ranks below them
    const ranked = order(w, [...commune(), held(0, settled)])
    expect(ranked.indexOf(0)).toBeGreaterThan(ranked.indexOf(1))
    expect(ranked.indexOf(0)).toBeGreaterThan(ranked.indexOf(2))
  })
})


function status(w: Rec, meshlet: number, state: string, over: { replica?: number; exitCode?: number; at?: number; cid?: string } = {}): Rec {
  return rec('commune.scheduler.workloadStatus', M[meshlet], `st-${meshlet}-${over.replica ?? 0}`, {
    workload: { uri: w.stored.uri, cid: over.cid ?? w.stored.cid },
    replica: over.replica ?? 0,
    state,
    ...(over.exitCode !== undefined ? { exitCode: over.exitCode } : {}),
    updatedAt: iso(T0 + (over.at ?? 1000)),
  })
}

/** Meshlet indices in the order a workload ranks them. */
const order = (w: Rec, recs: Rec[] = commune()) => place(build(recs, [w]), w.stored.uri, T0)!.candidates.map((c) => M.indexOf(c.did))

describe('bids and answers', () => {
  it('ignores bids with the wrong cid or from a non-candidate, and offers dated after the queue timeout', () => {
    const w = workload({ queueTimeoutSeconds: 60 })
    const s = build(commune({ lists: [[1, 2], [0], [0], []] }), [w], [
      bid(w, 1, { cid: cid('stale') }),
      bid(w, 3),
      bid(w, 2, { round: 1, at: 61_000 }),
    ])
    const p = place(s, w.stored.uri, after)!
    expect(p.rejected.map((r) => r.reason).sort()).toEqual(['after-queue-timeout', 'not-a-candidate', 'wrong-workload-cid'])
    expect(p.selected).toEqual([])
    expect(p.whyNot).toContainEqual({ meshlet: M[3], reason: 'not-a-member' })
  })

  it('a bid counts whenever it arrives: no window, so a slow firehose costs time, not the replica', () => {
    const w = workload()
    const top = order(w)[0]
    // answered just before its due time, seen an hour later, after many more heartbeats
    const s = build(commune({ capacity: () => ({ updatedAt: iso(T0 + 3_600_000) }) }), [w], [bid(w, top, { at: ANSWER_DEADLINE_MS - 1 })])
    expect(place(s, w.stored.uri, T0 + 3_600_500)!).toMatchObject({ phase: 'placed', placed: 1, selected: [expect.objectContaining({ meshlet: M[top], confirmed: true })] })
  })

  it('a candidate that heartbeats past its due time without answering counts as lost for the workload; the next one’s answer is due a deadline later', () => {
    const w = workload({ replicas: 2 })
    const [a, b, c] = order(w)
    const beat = (who: number, at: number) => (i: number) => (i === who ? { updatedAt: iso(T0 + at) } : { updatedAt: iso(T0 + 1000) })
    // a heartbeat before the due time proves nothing yet
    expect(place(build(commune({ capacity: beat(a, ANSWER_DEADLINE_MS - 1) }), [w]), w.stored.uri, T0 + ANSWER_DEADLINE_MS + 10)!.invited).toEqual([M[a], M[b]])
    const silent = place(build(commune({ capacity: beat(a, ANSWER_DEADLINE_MS) }), [w], [bid(w, b)]), w.stored.uri, T0 + ANSWER_DEADLINE_MS + 10)!
    expect(silent.invited).toEqual([M[c]])
    expect(silent.whyNot).toContainEqual({ meshlet: M[a], reason: 'lost:no-answer' })
    expect(silent.selected).toEqual([expect.objectContaining({ meshlet: M[b], confirmed: true })])
    // c is due one deadline after b (the second in the round), whoever was silent: not at once
    const cBeats = (i: number) => (i === a ? { updatedAt: iso(T0 + ANSWER_DEADLINE_MS) } : i === c ? { updatedAt: iso(T0 + 3 * ANSWER_DEADLINE_MS - 1) } : { updatedAt: iso(T0 + 1000) })
    expect(place(build(commune({ capacity: cBeats }), [w], [bid(w, b)]), w.stored.uri, T0 + 3 * ANSWER_DEADLINE_MS)!.invited).toEqual([M[c]])
    // an answer stamped two heartbeat intervals past its due time came after a heartbeat: it does not count
    const HB = 60_000
    const late = place(build(commune({ capacity: () => ({ updatedAt: iso(T0 + ANSWER_DEADLINE_MS + 3 * HB) }) }), [w], [bid(w, a, { at: ANSWER_DEADLINE_MS + 2 * HB }), bid(w, b)]), w.stored.uri, T0 + ANSWER_DEADLINE_MS + 3 * HB)!
    expect(late.whyNot).toContainEqual({ meshlet: M[a], reason: 'lost:no-answer' })
    expect(late.selected.map((x) => x.meshlet)).toEqual([M[b]])
  })

  it('one answer per meshlet per round: copies count once, two different answers count as a decline', () => {
    const w = workload({}, 1)
    const copies = place(build(commune(), [w], [bid(w, 1, { at: 500 }), bid(w, 1, { at: 200 })]), w.stored.uri, after)!
    expect(copies.answers).toEqual([expect.objectContaining({ did: M[1], accept: true })])
    expect(copies.rejected).toEqual([expect.objectContaining({ reason: 'superseded' })])
    // an offer added later cannot turn a decline into an acceptance (nor the other way round)
    const both = place(build(commune(), [w], [bid(w, 1, { at: 500, decline: true }), bid(w, 1, { at: 200 })]), w.stored.uri, after)!
    expect(both.answers).toEqual([expect.objectContaining({ did: M[1], accept: false, reason: 'conflicting answers' })])
    expect(both.selected.map((s) => s.meshlet)).not.toContain(M[1])
  })
})

describe('selection and confirmation', () => {
  it('the top candidate that answers is confirmed at once (fast close)', () => {
    const w = workload()
    const [first] = order(w)
    const p = place(build(commune(), [w], [bid(w, first)]), w.stored.uri, T0 + 200)!
    expect(p).toMatchObject({ phase: 'placed', settled: true, placed: 1, confirmed: [M[first]], invited: [] })
  })

  it('an unanswered candidate above keeps a lower offer unconfirmed however long it takes, until it answers or is lost', () => {
    const w = workload({ replicas: 2 })
    const [a, b, c] = order(w)
    const s = build(commune(), [w], [bid(w, a), bid(w, c)])
    for (const t of [T0 + 500, T0 + 100_000]) {
      const p = place(s, w.stored.uri, t)!
      expect(p.phase).toBe('placing')
      expect(p.confirmed).toEqual([M[a]])
      expect(p.invited).toEqual([M[b]])
    }
    // b declines: c moves up and is confirmed
    const declined = place(build(commune(), [w], [bid(w, a), bid(w, c), bid(w, b, { decline: true })]), w.stored.uri, T0 + 600)!
    expect(declined).toMatchObject({ phase: 'placed', confirmed: [M[a], M[c]] })
    // b never answers and stops heartbeating: once lost, it no longer holds c back
    const silent = build(commune({ capacity: (i) => (i === b ? { updatedAt: iso(T0 - 1000) } : { updatedAt: iso(T0 + 1e6) }) }), [w], [bid(w, a), bid(w, c)])
    const lossAt = T0 - 1000 + 3 * 60_000 + 5000
    expect(place(silent, w.stored.uri, lossAt - 1)!.confirmed).toEqual([M[a]])
    expect(place(silent, w.stored.uri, lossAt - 1)!.nextDeadline).toBe(lossAt)
    expect(place(silent, w.stored.uri, lossAt)!).toMatchObject({ phase: 'placed', confirmed: [M[a], M[c]] })
  })

  it('invites as many candidates as replicas need, the next one only when one declines or is lost — never more with time', () => {
    const w = workload({ replicas: 2 })
    const [a, b, c] = order(w)
    expect(place(build(commune(), [w]), w.stored.uri, T0)!.invited).toEqual([M[a], M[b]])
    // heartbeats before the answers are due prove no silence: time alone invites nobody
    const alive = commune({ capacity: () => ({ updatedAt: iso(T0 + ANSWER_DEADLINE_MS - 1) }) })
    expect(place(build(alive, [w]), w.stored.uri, T0 + 300_000)!.invited).toEqual([M[a], M[b]])
    const p = place(build(commune(), [w], [bid(w, a, { decline: true })]), w.stored.uri, T0 + 10)!
    expect(p.invited).toEqual([M[b], M[c]])
  })

  it('packing: one meshlet may take several replicas, up to its slots', () => {
    const w = workload({ replicas: 3, allowPacking: true })
    const [a, b] = order(w)
    const p = place(build(commune(), [w], [bid(w, a, { slots: 2 }), bid(w, b)]), w.stored.uri, after)!
    expect(p.selected.map((s) => [s.meshlet, s.replicas])).toEqual([[M[a], 2], [M[b], 1]])
    expect(p.placed).toBe(3)
  })

  it('a deleted workload has no placement', () => {
    const w = workload()
    const s = build(commune(), [w], [bid(w, 0)])
    s.delete('commune.scheduler.workload', w.stored.did, w.stored.rkey)
    expect(place(s, w.stored.uri, after)).toBeUndefined()
  })
})

describe('queueing', () => {
  it('when every candidate has answered and replicas are missing, the rest is queued with the reasons', () => {
    const w = workload({ replicas: 3 })
    const [a, b, c, d] = order(w)
    const s = build(commune(), [w], [bid(w, a), bid(w, b, { decline: true }), bid(w, c), bid(w, d, { decline: true, reason: 'draining' })])
    const p = place(s, w.stored.uri, T0 + 500)!
    expect(p).toMatchObject({ phase: 'queued', settled: true, placed: 2, wanted: 3, round: 0 })
    expect(p.reason).toBe('1 replica(s) queued: no meshlet with room (1 declined:draining, 1 declined:no room)')
    expect(p.nextRound).toEqual({ round: 1, pool: [M[b], M[d]], late: { round: 1, pool: [] } })
    expect(p.whyNot).toEqual(expect.arrayContaining([{ meshlet: M[b], reason: 'declined:no room' }]))
  })

  it('a meshlet with room later offers in the next round; candidates above it are asked first; it fills only what is missing', () => {
    const w = workload({ replicas: 3 })
    const [a, b, c, d] = order(w)
    const round0 = [bid(w, a), bid(w, b, { decline: true }), bid(w, c), bid(w, d, { decline: true })]
    const offered = place(build(commune(), [w], [...round0, bid(w, d, { round: 1, at: 9000 })]), w.stored.uri, T0 + 9500)!
    expect(offered).toMatchObject({ phase: 'placing', round: 1, invited: [M[b]] })
    expect(offered.selected.find((s) => s.meshlet === M[d])).toMatchObject({ round: 1, confirmed: false })
    const done = place(build(commune(), [w], [...round0, bid(w, d, { round: 1, at: 9000 }), bid(w, b, { round: 1, decline: true, at: 9100 })]), w.stored.uri, T0 + 9500)!
    expect(done).toMatchObject({ phase: 'placed', placed: 3, confirmed: [M[a], M[c], M[d]] })
  })

  it('more replicas than meshlets can spread over: the reason says every eligible meshlet holds all it can take', () => {
    const w = workload({ replicas: 5 })
    const [a, b, c, d] = order(w)
    const p = place(build(commune(), [w], [bid(w, a), bid(w, b), bid(w, c), bid(w, d)]), w.stored.uri, T0 + 500)!
    expect(p).toMatchObject({ phase: 'queued', placed: 4, wanted: 5, whyNot: [] })
    expect(p.reason).toBe('1 replica(s) queued: every eligible meshlet (4) holds all it can take')
    // one candidate without a replica makes it a shortage of room again
    const q = place(build(commune(), [w], [bid(w, a), bid(w, b), bid(w, c), bid(w, d, { decline: true })]), w.stored.uri, T0 + 500)!
    expect(q.reason).toBe('2 replica(s) queued: no meshlet with room (1 declined:no room)')
  })

  it('a workload that nobody can run stays queued, then fails at its queue timeout with the reason', () => {
    const w = workload({ resources: { cpuMillis: 512_000, memoryMiB: 64 }, queueTimeoutSeconds: 60 })
    const queued = place(build(commune(), [w]), w.stored.uri, T0 + 1000)!
    expect(queued).toMatchObject({ phase: 'queued', placed: 0, nextDeadline: T0 + 65_000 })
    expect(queued.reason).toBe('1 replica(s) queued: no eligible meshlet (4 infeasible:cpu)')
    const failed = place(build(commune(), [w]), w.stored.uri, T0 + 65_000)!
    expect(failed).toMatchObject({ phase: 'failed', nextRound: null, reason: '1 replica(s) unplaced at the queue timeout: no eligible meshlet (4 infeasible:cpu)' })
  })
})

describe('late joiners', () => {
  it('a meshlet that came online after the workload was created ranks last and is not asked in round 0', () => {
    const w = workload()
    const before = order(w)
    const late = before[0]
    const recs = commune({ capacity: (i) => (i === late ? { onlineSince: iso(T0 + 10), updatedAt: iso(T0 + 10) } : { onlineSince: iso(T0 - 1e5) }) })
    const p = place(build(recs, [w]), w.stored.uri, T0 + 20)!
    expect(p.candidates.at(-1)).toMatchObject({ did: M[late], late: true })
    expect(p.invited).toEqual([M[before[1]]])
  })

  it('meshlets that came online less than a settled while before the workload rank after the settled ones (by score among themselves) and are asked in round 0', () => {
    const w = workload()
    const before = order(w)
    expect(before[0]).toBe(0) // the owner's own meshlet ranks first when all have settled
    const since = (i: number) => (i === 0 ? T0 - 5000 : i === before[1] ? T0 - 20_000 : T0 - SETTLE_MS)
    const recs = commune({ capacity: (i) => ({ onlineSince: iso(since(i)) }) })
    const p = place(build(recs, [w]), w.stored.uri, T0 + 20)!
    const settled = before.filter((i) => i !== 0 && i !== before[1])
    expect(p.candidates.map((c) => M.indexOf(c.did))).toEqual([...settled, 0, before[1]])
    expect(p.candidates.slice(-2)).toMatchObject([{ fresh: true, late: false, since: T0 - 5000 }, { fresh: true, late: false, since: T0 - 20_000 }])
    expect(p.candidates[0]).toMatchObject({ fresh: false, since: null })
    // the settled ones declining, round 0 asks the newcomers next
    const asked = place(build(recs, [w], settled.map((i) => bid(w, i, { decline: true }))), w.stored.uri, T0 + 500)!
    expect(asked.invited).toEqual([M[0]])
  })
})

describe('finality and loss', () => {
  const HB = 60_000 // heartbeatSeconds in commune()
  const lossAt = T0 - 1000 + 3 * HB + 5000 // meshlet heartbeat at T0 - 1000, plus the skew allowance
  const freshBut = (gone: number) => (i: number) => (i === gone ? {} : { updatedAt: iso(lossAt) })

  it('a lost meshlet’s replica goes to the next candidate in the same round; the survivor keeps its own', () => {
    const w = workload({ replicas: 2 })
    const [a, b, c] = order(w)
    const recs = [bid(w, a), bid(w, b), status(w, a, 'running'), status(w, b, 'running')]
    const s = build(commune({ capacity: freshBut(b) }), [w], recs)
    const before = place(s, w.stored.uri, lossAt - 1)!
    expect(before).toMatchObject({ phase: 'placed', confirmed: [M[a], M[b]], nextDeadline: lossAt })
    const lost = place(s, w.stored.uri, lossAt)!
    expect(lost).toMatchObject({ phase: 'placing', invited: [M[c]], confirmed: [M[a]] })
    expect(lost.whyNot).toContainEqual({ meshlet: M[b], reason: 'lost:heartbeat-expired' })
    const replaced = place(build(commune({ capacity: freshBut(b) }), [w], [...recs, bid(w, c, { at: lossAt - T0 + 10 })]), w.stored.uri, lossAt + 20)!
    expect(replaced).toMatchObject({ phase: 'placed', confirmed: [M[a], M[c]] })
  })

  it('a meshlet that could not run its replica is replaced at once, not at its next heartbeat', () => {
    const w = workload()
    const [a, b] = order(w)
    const p = place(build(commune(), [w], [bid(w, a), status(w, a, 'failed')]), w.stored.uri, T0 + 1600)!
    expect(p).toMatchObject({ phase: 'placing', placed: 0, invited: [M[b]] })
    expect(p.whyNot).toContainEqual({ meshlet: M[a], reason: 'lost:could-not-run' })
  })

  it('a finished replica is never placed again, whatever happens later to its meshlet, the cluster or the ranking', () => {
    const w = workload()
    const [a] = order(w)
    for (const st of [status(w, a, 'succeeded', { exitCode: 0 }), status(w, a, 'failed', { exitCode: 3 }), status(w, a, 'stopped')]) {
      // a's heartbeat long expired and a's owner dropped from every cluster
      const recs = commune({ lists: [[], [], [], []].map((l, i) => (i === a ? [0, 1, 2, 3].filter((j) => j !== a) : l)), capacity: (i) => (i === a ? { updatedAt: iso(T0 - 1e6) } : {}) })
      const p = place(build(recs, [w], [bid(w, a), st]), w.stored.uri, T0 + 1e7)!
      expect(p).toMatchObject({ phase: 'placed', placed: 1, invited: [] })
      expect(p.selected).toEqual([expect.objectContaining({ meshlet: M[a], finished: 1, replicas: 0 })])
    }
  })

  it('a running replica keeps its meshlet when the ranking changes later (a bigger machine appears)', () => {
    const w = workload({ replicas: 2 })
    const [a, b, c] = order(w)
    const recs = [bid(w, a), bid(w, b), status(w, a, 'running'), status(w, b, 'running')]
    const bigger = commune({ capacity: (i) => (i === c ? { total: { cpuMillis: 64_000, memoryMiB: 65_536 }, allocatable: { cpuMillis: 64_000, memoryMiB: 65_536 } } : {}) })
    expect(order(w, bigger).slice(0, 2)).toEqual([a, c])
    const p = place(build(bigger, [w], recs), w.stored.uri, T0 + 2000)!
    expect(p).toMatchObject({ phase: 'placed', confirmed: [M[a], M[b]], invited: [] })
    expect(p.selected.map((s) => s.via)).toEqual(['held', 'held'])
  })

  it('a status without an offer holds nothing: a forged or foreign `running` places nobody', () => {
    const w = workload()
    const [a, b] = order(w)
    const p = place(build(commune(), [w], [status(w, b, 'running'), status(w, a, 'succeeded', { exitCode: 0 })]), w.stored.uri, T0 + 2000)!
    expect(p).toMatchObject({ placed: 0, invited: [M[a]] })
  })

  it('a lost meshlet that comes back without restarting regains its place; the replacement is no longer selected', () => {
    const w = workload()
    const [a, b] = order(w)
    const recs = [bid(w, a), status(w, a, 'running'), bid(w, b, { at: lossAt - T0 + 10 }), status(w, b, 'running', { at: lossAt - T0 + 20 })]
    const gone = place(build(commune({ capacity: freshBut(a) }), [w], recs), w.stored.uri, lossAt + 100)!
    expect(gone.confirmed).toEqual([M[b]])
    const back = place(build(commune({ capacity: () => ({ updatedAt: iso(lossAt + 50) }) }), [w], recs), w.stored.uri, lossAt + 100)!
    expect(back.confirmed).toEqual([M[a]])
    expect(back.whyNot).toContainEqual({ meshlet: M[b], reason: 'not-needed' })
  })
})
