// Honest fair share: a status record counts only as far as signed records back it — the
// workload exists in that version, its meshlet offered for it, and it claims no more cpu
// than the workload asked for over its wall time. Forged statuses change nobody's rank.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { balances, balancesByScan, retire } from '../../src/scheduler/fairshare.js'
import { statusRecordKey } from '../../src/scheduler/hash.js'
import { place, rankCandidates, SETTLE_MS } from '../../src/scheduler/placement.js'
import { PublicState } from '../../src/scheduler/state.js'
import { cid, did, mulberry32, rec, stateOf, T0, worldArb, type Rec, type World } from './world.js'

const iso = (ms: number) => new Date(ms).toISOString()
const AS_OF = T0 - SETTLE_MS
const [ann, ben, CAT] = ['ann', 'ben', 'cat'].map((n) => did(`fairshare-${n}`))
const [ANN_MESH, BEN_MESH, CAT_MESH] = ['ann', 'ben', 'cat'].map((n) => did(`fairshare-${n}-mesh`))

/** A finished workload of the past: its offers and, for each offer, the finished status. */
interface Past {
  owner: number
  cpu: number
  offers: { meshlet: number; cpuMillis: number }[]
  ageMs: number
}

const pastArb = (owners: number, meshlets: number) =>
  fc.array(
    fc.record({
      owner: fc.nat(owners - 1),
      cpu: fc.constantFrom(500, 1000, 2000),
      offers: fc.uniqueArray(fc.record({ meshlet: fc.nat(meshlets - 1), cpuMillis: fc.integer({ min: 1, max: 600_000 }) }), { selector: (o) => o.meshlet, maxLength: 3 }),
      ageMs: fc.integer({ min: 200_000, max: 3_000_000 }),
    }),
    { maxLength: 5 },
  )

function pastRecords(world: World, past: Past[]): { records: Rec[]; workloads: Rec[] } {
  const records: Rec[] = []
  const workloads: Rec[] = []
  past.forEach((p, k) => {
    const createdAt = T0 - p.ageMs
    const w = rec('commune.scheduler.workload', world.owners[p.owner], `3kpast${String(k).padStart(7, 'a')}`, {
      image: 'busybox',
      resources: { cpuMillis: p.cpu, memoryMiB: 64 },
      replicas: 1,
      createdAt: iso(createdAt),
    })
    workloads.push(w)
    records.push(w)
    for (const o of p.offers) {
      const m = world.meshlets[o.meshlet]
      records.push(rec('commune.scheduler.bid', m, `3kpastbid${k}${o.meshlet}aa`, { workload: { uri: w.stored.uri, cid: w.stored.cid }, round: 0, score: 1, createdAt: iso(createdAt + 1000) }))
      records.push(
        rec('commune.scheduler.workloadStatus', m, statusRecordKey(w.stored.uri, 0), {
          workload: { uri: w.stored.uri, cid: w.stored.cid },
          replica: 0,
          state: 'succeeded',
          exitCode: 0,
          cpuMillis: o.cpuMillis,
          startedAt: iso(createdAt + 2000),
          finishedAt: iso(createdAt + 150_000),
          updatedAt: iso(createdAt + 150_000),
        }),
      )
    }
  })
  return { records, workloads }
}

type Forgery =
  /** a status (and maybe an offer) for a workload that does not exist */
  | { kind: 'invented'; meshlet: number; owner: number; replica: number; cpuMillis: number; withOffer: boolean; n: number }
  /** a status for a real workload the meshlet never offered for, declined, or under a version never published */
  | { kind: 'unselected'; meshlet: number; past: number; how: 'no-offer' | 'declined' | 'late-offer' | 'wrong-cid'; cpuMillis: number; n: number }
  /** a second copy by a meshlet that did offer: another replica number, or another record key */
  | { kind: 'extra-copy'; meshlet: number; past: number; how: 'replica' | 'rkey'; cpuMillis: number; n: number }

const forgeryArb = (owners: number, meshlets: number): fc.Arbitrary<Forgery> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('invented' as const),
      meshlet: fc.nat(meshlets - 1),
      owner: fc.nat(owners - 1),
      replica: fc.nat(3),
      cpuMillis: fc.integer({ min: 1, max: 1e9 }),
      withOffer: fc.boolean(),
      n: fc.nat(1e6),
    }),
    fc.record({
      kind: fc.constant('unselected' as const),
      meshlet: fc.nat(meshlets - 1),
      past: fc.nat(4),
      how: fc.constantFrom('no-offer' as const, 'declined' as const, 'late-offer' as const, 'wrong-cid' as const),
      cpuMillis: fc.integer({ min: 1, max: 1e9 }),
      n: fc.nat(1e6),
    }),
    fc.record({
      kind: fc.constant('extra-copy' as const),
      meshlet: fc.nat(meshlets - 1),
      past: fc.nat(4),
      how: fc.constantFrom('replica' as const, 'rkey' as const),
      cpuMillis: fc.integer({ min: 1, max: 1e9 }),
      n: fc.nat(1e6),
    }),
  )

const finished = (cpuMillis: number, createdAt: number) => ({
  state: 'succeeded',
  exitCode: 0,
  cpuMillis,
  startedAt: iso(createdAt + 1),
  finishedAt: iso(AS_OF - 1),
  updatedAt: iso(AS_OF - 1),
})

/** The records of one forgery, or none when it does not fit the world (e.g. no such past workload). */
function forge(world: World, past: Past[], workloads: Rec[], f: Forgery): Rec[] {
  const m = world.meshlets[f.meshlet]
  const key = (prefix: string) => `${prefix}${f.n}`
  if (f.kind === 'invented') {
    const uri = `at://${world.owners[f.owner]}/commune.scheduler.workload/3kinvented${f.n}`
    const ref = { uri, cid: cid(uri) }
    const out = [rec('commune.scheduler.workloadStatus', m, statusRecordKey(uri, f.replica), { workload: ref, replica: f.replica, ...finished(f.cpuMillis, T0 - 3_000_000) })]
    if (f.withOffer) out.push(rec('commune.scheduler.bid', m, key('3kforgedbid'), { workload: ref, round: 0, score: 1, createdAt: iso(T0 - 3_000_000) }))
    return out
  }
  const p = past[f.past]
  const w = workloads[f.past]
  if (!p || !w) return []
  const offered = p.offers.some((o) => o.meshlet === f.meshlet)
  const createdAt = Date.parse((w.stored.record as { createdAt: string }).createdAt)
  const ref = { uri: w.stored.uri, cid: w.stored.cid }
  if (f.kind === 'extra-copy') {
    if (!offered) return []
    const replica = f.how === 'replica' ? 1 : 0
    const rkey = f.how === 'replica' ? statusRecordKey(w.stored.uri, 1) : key('forged')
    return [rec('commune.scheduler.workloadStatus', m, rkey, { workload: ref, replica, ...finished(f.cpuMillis, createdAt) })]
  }
  // a meshlet that did offer has an honest status at the canonical key: forging there would replace it, not add
  if (offered) return []
  const statusRef = f.how === 'wrong-cid' ? { uri: w.stored.uri, cid: cid(`never-published${f.n}`) } : ref
  const out = [rec('commune.scheduler.workloadStatus', m, statusRecordKey(w.stored.uri, 0), { workload: statusRef, replica: 0, ...finished(f.cpuMillis, createdAt) })]
  // a decline is no offer; an offer in a later round after the queue timeout (default one hour) does not count
  if (f.how === 'declined') out.push(rec('commune.scheduler.bid', m, key('3kdecline'), { workload: ref, round: 0, score: 1, decline: true, reason: 'no room', createdAt: iso(createdAt + 1000) }))
  if (f.how === 'late-offer') out.push(rec('commune.scheduler.bid', m, key('3klateoffer'), { workload: ref, round: 1, score: 1, createdAt: iso(createdAt + 3_601_000) }))
  return out
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const rand = mulberry32(seed)
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

const sorted = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1))

describe('fair share from signed records only', () => {
  it('property: forged statuses — invented workloads, workloads never offered for, extra copies — change nobody’s balance or rank', () => {
    let withHistory = 0
    fc.assert(
      fc.property(
        worldArb.chain((world) =>
          fc.record({
            world: fc.constant(world),
            past: pastArb(world.owners.length, world.meshlets.length),
            forgeries: fc.array(forgeryArb(world.owners.length, world.meshlets.length), { minLength: 1, maxLength: 12 }),
            seed: fc.nat(),
          }),
        ),
        ({ world, past, forgeries, seed }) => {
          const history = pastRecords(world, past)
          const honest = [...world.records, world.workload, ...history.records]
          const forged = forgeries.flatMap((f) => forge(world, past, history.workloads, f))
          const base = stateOf(honest)
          const attacked = stateOf(shuffle([...honest, ...forged], seed))
          const before = balances(base, AS_OF)
          if ([...before.values()].some((v) => v !== 0)) withHistory++
          expect(sorted(balances(attacked, AS_OF))).toEqual(sorted(before))
          const target = world.workload.stored as Parameters<typeof rankCandidates>[1]
          expect(rankCandidates(attacked, target).candidates).toEqual(rankCandidates(base, target).candidates)
        },
      ),
      { numRuns: 300 },
    )
    // not vacuous: honest history moved balances in many runs
    expect(withHistory).toBeGreaterThan(30)
  })

  it('property: the incremental ledger reads exactly what a scan of every status gives, through puts, deletes and link changes in any order', () => {
    let nonZero = 0
    fc.assert(
      fc.property(
        worldArb.chain((world) =>
          fc.record({
            world: fc.constant(world),
            past: pastArb(world.owners.length, world.meshlets.length),
            forgeries: fc.array(forgeryArb(world.owners.length, world.meshlets.length), { maxLength: 6 }),
            seed: fc.nat(),
            // after each record: maybe a query (as of some moment, all or some servers) and maybe a delete
            steps: fc.array(fc.record({ query: fc.boolean(), asOfBack: fc.integer({ min: 0, max: 3_000_000 }), some: fc.boolean(), del: fc.nat(40) }), { minLength: 60, maxLength: 60 }),
          }),
        ),
        ({ world, past, forgeries, seed, steps }) => {
          const history = pastRecords(world, past)
          const forged = forgeries.flatMap((f) => forge(world, past, history.workloads, f))
          const order = shuffle([...world.records, world.workload, ...history.records, ...forged], seed)
          const state = new PublicState()
          const put: Rec[] = []
          order.forEach((r, i) => {
            state.put(r.collection, r.stored)
            put.push(r)
            const step = steps[i % steps.length]
            // deleting a workload, an offer, a status or a link moves balances; the ledger must follow
            if (step.del < put.length && step.del % 3 === 0) {
              const gone = put[step.del]
              state.delete(gone.collection, gone.stored.did, gone.stored.rkey)
            }
            if (!step.query) return
            const servers = step.some ? world.meshlets.filter((_, k) => k % 2 === seed % 2) : undefined
            const asOf = T0 - step.asOfBack
            const got = sorted(balances(state, asOf, servers))
            if (got.length) nonZero++
            expect(got).toEqual(sorted(balancesByScan(state, asOf, servers)))
          })
        },
      ),
      { numRuns: 200 },
    )
    expect(nonZero).toBeGreaterThan(50)
  })

  it('property: retiring finished workloads keeps every balance exact, ignores their replayed records, and a delete still takes their history', () => {
    let retiredWithHistory = 0
    fc.assert(
      fc.property(
        worldArb.chain((world) =>
          fc.record({
            world: fc.constant(world),
            past: pastArb(world.owners.length, world.meshlets.length),
            seed: fc.nat(),
            retireMask: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
            deleteAfter: fc.option(fc.nat(4), { nil: undefined }),
            asOfBack: fc.array(fc.integer({ min: 0, max: 3_000_000 }), { minLength: 3, maxLength: 3 }),
          }),
        ),
        ({ world, past, seed, retireMask, deleteAfter, asOfBack }) => {
          const history = pastRecords(world, past)
          const all = shuffle([...world.records, world.workload, ...history.records], seed)
          const full = stateOf(all)
          const lean = stateOf(all)
          const check = () => {
            for (const back of asOfBack) expect(sorted(balances(lean, T0 - back))).toEqual(sorted(balancesByScan(full, T0 - back)))
          }
          history.workloads.forEach((w, k) => {
            if (!retireMask[k]) return
            expect(retire(lean, w.stored.uri)).toBe(true)
            if (sorted(balancesByScan(full, T0)).length) retiredWithHistory++
          })
          check()
          // the firehose replays everything: nothing of a retired workload comes back
          for (const r of shuffle(all, seed + 1)) lean.put(r.collection, r.stored)
          check()
          history.workloads.forEach((w, k) => {
            if (retireMask[k]) expect(place(lean, w.stored.uri, T0)).toBeUndefined()
          })
          // its owner deletes one: its history leaves both
          const gone = deleteAfter === undefined ? undefined : history.workloads[deleteAfter]
          if (gone) {
            for (const s of [full, lean]) s.delete(gone.collection, gone.stored.did, gone.stored.rkey)
            check()
          }
        },
      ),
      { numRuns: 200 },
    )
    expect(retiredWithHistory).toBeGreaterThan(20)
  })

  it('an offer and its finished status count: the owner who consumed ranks higher to serve next', () => {
    // ann and ben, one meshlet each, mutual members; cat a third member without a machine
    const base = commune()
    const old = rec('commune.scheduler.workload', ann, '3koldoldoldol', { image: 'busybox', resources: { cpuMillis: 1000, memoryMiB: 64 }, replicas: 1, createdAt: iso(T0 - 900_000) })
    const ref = { uri: old.stored.uri, cid: old.stored.cid }
    const offer = rec('commune.scheduler.bid', BEN_MESH, '3koldbidaaaaa', { workload: ref, round: 0, score: 1, createdAt: iso(T0 - 899_000) })
    const status = (over: Record<string, unknown> = {}) =>
      rec('commune.scheduler.workloadStatus', BEN_MESH, statusRecordKey(old.stored.uri, 0), {
        workload: ref,
        replica: 0,
        state: 'succeeded',
        exitCode: 0,
        cpuMillis: 200_000,
        startedAt: iso(T0 - 898_000),
        finishedAt: iso(T0 - 600_000),
        updatedAt: iso(T0 - 600_000),
        ...over,
      })
    const b = (recs: Rec[]) => sorted(balances(stateOf([...base, ...recs]), AS_OF))
    expect(b([old, offer, status()])).toEqual(sorted(new Map([[ann, -200_000], [ben, 200_000]])))
    // without its offer, or once the workload is deleted or was another version, nothing counts
    expect(b([old, status()])).toEqual([])
    expect(b([offer, status()])).toEqual([])
    expect(b([old, offer, status({ workload: { uri: ref.uri, cid: cid('v2') } })])).toEqual([])
    // no more than the workload's cpu over the replica's wall time: 1 core × 298 s here
    expect(b([old, offer, status({ cpuMillis: 10_000_000 })])).toEqual(sorted(new Map([[ann, -298_000], [ben, 298_000]])))
    // a replica that "finished" before its workload existed served nothing
    expect(b([old, offer, status({ startedAt: iso(T0 - 2_000_000), finishedAt: iso(T0 - 950_000) })])).toEqual([])
    // the ranking follows: ann's meshlet (owing) ranks above ben's for a third owner's work
    const w = rec('commune.scheduler.workload', CAT, '3kworkloadaaa', { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 64 }, replicas: 1, createdAt: iso(T0) })
    const ranked = rankCandidates(stateOf([...base, old, offer, status(), w]), w.stored as Parameters<typeof rankCandidates>[1])
    expect(ranked.candidates.map((c) => c.did)).toEqual([ANN_MESH, BEN_MESH])
    expect(ranked.candidates[0].score - ranked.candidates[1].score).toBe(400)
  })
})


/** Three members, each listing the other two; cat's meshlet publishes no capacity (it runs nothing). */
function commune(): Rec[] {
  const out: Rec[] = []
  for (const [owner, mesh, others] of [
    [ann, ANN_MESH, [ben, CAT]],
    [ben, BEN_MESH, [ann, CAT]],
    [CAT, CAT_MESH, [ann, ben]],
  ] as const) {
    out.push(rec('commune.scheduler.meshletOwner', mesh, 'self', { owner, createdAt: iso(T0 - 1e7) }))
    out.push(rec('commune.scheduler.meshlet', owner, mesh, { meshlet: mesh, createdAt: iso(T0 - 1e7) }))
    out.push(rec('commune.scheduler.cluster', mesh, 'c', { members: [...others], createdAt: iso(T0 - 1e7) }))
    if (mesh === CAT_MESH) continue
    const total = { cpuMillis: 4000, memoryMiB: 8192 }
    out.push(rec('commune.scheduler.capacity', mesh, 'self', { total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: 60, updatedAt: iso(T0 - 1000) }))
  }
  return out
}
