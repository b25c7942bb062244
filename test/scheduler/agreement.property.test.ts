// Property-based tests of the deterministic core: agreement in any arrival order,
// idempotent replays, validity from signed data only, selection bounds, finality, and
// safety (no two meshlets confirmed for one replica) however records are delayed.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ANSWER_DEADLINE_MS, place, SETTLE_MS } from '../../src/scheduler/placement.js'
import { isFinal } from '../../src/scheduler/replica.js'
import { bidRecord, bidsArb, buildWorld, mulberry32, rec, stateOf, statusesArb, statusRecord, T0, worldArb, type Rec, type World } from './world.js'

// the last ones are past every meshlet's heartbeat expiry: losses are in play
const NOWS = [T0 - 1, T0 + 10, T0 + 2000, T0 + 190_000, T0 + 400_000, T0 + 4_000_000]

const scenario = worldArb.chain((world) =>
  fc.record({ world: fc.constant(world), bids: bidsArb(world.meshlets.length), statuses: statusesArb(world.meshlets.length) }),
)

function recordsOf(world: World, s: { bids: Parameters<typeof bidRecord>[1][]; statuses: Parameters<typeof statusRecord>[1][] }): Rec[] {
  const bids = s.bids.map((b, i) => bidRecord(world, { ...b, rkey: uniqueKey(b.rkey, i) }))
  // one version per status record: two versions of one record are ordered by their repo, not by us
  const statuses = [...new Map(s.statuses.map((x) => statusRecord(world, x)).map((r) => [r.stored.uri, r])).values()]
  return [...world.records, world.workload, ...bids, ...statuses]
}

describe('placement core (properties)', () => {
  it('agreement: the same records in any order give byte-identical output', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (sc, seed) => {
        const recs = recordsOf(sc.world, sc)
        const orders = [recs, [...recs].reverse(), shuffle(recs, seed)]
        for (const now of NOWS) {
          const outs = orders.map((o) => JSON.stringify(place(stateOf(o), sc.world.workload.stored.uri, now)))
          expect(new Set(outs).size).toBe(1)
        }
      }),
      { numRuns: 150 },
    )
  })

  it('replays are idempotent: a record delivered twice, or an unrelated record put and deleted, changes nothing', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const recs = recordsOf(sc.world, sc)
        const once = stateOf(recs)
        const twice = stateOf([...recs, ...recs])
        const noise = rec('commune.scheduler.cluster', sc.world.meshlets[0], 'noise', { members: [], createdAt: new Date(T0).toISOString() })
        twice.put(noise.collection, noise.stored)
        twice.delete(noise.collection, noise.stored.did, noise.stored.rkey)
        const uri = sc.world.workload.stored.uri
        for (const now of NOWS) expect(JSON.stringify(place(twice, uri, now))).toBe(JSON.stringify(place(once, uri, now)))
      }),
      { numRuns: 100 },
    )
  })

  it('validity depends on signed data only: which answers count never depends on the time of evaluation', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 10_000_000 }), (sc, later) => {
        const state = stateOf(recordsOf(sc.world, sc))
        const uri = sc.world.workload.stored.uri
        const a = place(state, uri, T0 + 5)!
        const b = place(state, uri, T0 + 5 + later)!
        expect(b.answers).toEqual(a.answers)
        expect(b.rejected).toEqual(a.rejected)
      }),
      { numRuns: 100 },
    )
  })

  it('never places more than replicas, never a non-candidate, distinct meshlets unless packing; a queued placement always says why', () => {
    fc.assert(
      fc.property(scenario, fc.constantFrom(...NOWS), (sc, now) => {
        const p = place(stateOf(recordsOf(sc.world, sc)), sc.world.workload.stored.uri, now)!
        expect(p.placed).toBeLessThanOrEqual(p.wanted)
        const candidates = new Set(p.candidates.map((c) => c.did))
        for (const s of p.selected) if (s.via !== 'finished') expect(candidates.has(s.meshlet)).toBe(true)
        const meshlets = p.selected.map((s) => s.meshlet)
        expect(new Set(meshlets).size).toBe(meshlets.length)
        if (!sc.world.workload.stored.record.allowPacking) for (const s of p.selected) expect(s.replicas + s.finished).toBeLessThanOrEqual(1)
        for (const c of p.confirmed) expect(candidates.has(c)).toBe(true)
        if (p.phase === 'queued' || p.phase === 'failed') {
          expect(p.reason).toMatch(/replica\(s\)/)
          expect(p.placed).toBeLessThan(p.wanted)
        }
        if (p.phase === 'placed') expect(p.placed).toBe(p.wanted)
        // every known meshlet that takes no replica is accounted for, with a reason
        const known = new Set([...p.whyNot.map((w) => w.meshlet), ...meshlets])
        for (const m of sc.world.meshlets) expect(known.has(m)).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it('finality: a finished replica stays placed on its meshlet whatever records arrive later', () => {
    fc.assert(
      fc.property(scenario, scenario, fc.constantFrom(...NOWS), (sc, more, now) => {
        const recs = recordsOf(sc.world, sc)
        const uri = sc.world.workload.stored.uri
        const before = place(stateOf(recs), uri, now)!
        // later records: any bids, any other statuses (never a second version of a finished one)
        const finishedUris = new Set(recs.filter((r) => r.collection === 'commune.scheduler.workloadStatus' && isFinal(r.stored.record as never)).map((r) => r.stored.uri))
        const extra = recordsOf(sc.world, { bids: more.bids.map((b) => ({ ...b, rkey: `3kz${b.rkey.slice(3)}` })), statuses: more.statuses }).filter(
          (r) => (r.collection === 'commune.scheduler.bid' || r.collection === 'commune.scheduler.workloadStatus') && !finishedUris.has(r.stored.uri) && !recs.some((x) => x.stored.uri === r.stored.uri),
        )
        const after = place(stateOf([...recs, ...extra]), uri, now + 1_000_000)!
        for (const s of before.selected.filter((x) => x.finished > 0)) {
          expect(after.selected.find((x) => x.meshlet === s.meshlet)?.finished).toBeGreaterThanOrEqual(s.finished)
        }
        expect(after.placed).toBeGreaterThanOrEqual(Math.min(before.wanted, before.selected.reduce((n, s) => n + s.finished, 0)))
      }),
      { numRuns: 150 },
    )
  })

  it('safety: two views that each confirm a meshlet never confirm more than replicas between them, however records are split', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(T0 + 10, T0 + 2000, T0 + 100_000), (sc, seed, now) => {
        // no losses and no silence: heartbeats stay fresh and come before any answer is due,
        // so only the delivery of answers differs between views
        const recs = recordsOf(sc.world, { ...sc, statuses: [] }).map((r) =>
          r.collection === 'commune.scheduler.capacity' ? rec('commune.scheduler.capacity', r.stored.did, 'self', { ...(r.stored.record as object), updatedAt: new Date(T0 + 1000).toISOString() } as never) : r,
        )
        const rand = mulberry32(seed)
        const answers = recs.filter((r) => r.collection === 'commune.scheduler.bid')
        const base = recs.filter((r) => r.collection !== 'commune.scheduler.bid')
        // each view has seen a random subset of the answers (a prefix per repo, as a firehose delivers)
        const views = [0, 1, 2].map(() => base.concat(prefixPerRepo(answers, rand)))
        const uri = sc.world.workload.stored.uri
        const full = place(stateOf(recs), uri, now)!
        const confirmed = new Map<string, number>()
        for (const v of views) {
          const p = place(stateOf(v), uri, now)!
          for (const s of p.selected) if (s.confirmed && s.replicas > 0) confirmed.set(s.meshlet, Math.max(confirmed.get(s.meshlet) ?? 0, s.replicas))
        }
        // a meshlet that gave two different answers in one round is not honest: what it runs is its own business
        const said = new Map<string, Set<boolean>>()
        for (const a of answers) {
          const r = a.stored.record as { round: number; decline?: boolean; workload: { cid: string } }
          const key = `${a.stored.did} ${r.round}`
          said.set(key, (said.get(key) ?? new Set()).add(!!r.decline))
        }
        const dishonest = new Set([...said].filter(([, v]) => v.size > 1).map(([k]) => k.split(' ')[0]))
        const total = [...confirmed].filter(([m]) => !dishonest.has(m)).reduce((a, [, n]) => a + n, 0)
        expect(total).toBeLessThanOrEqual(full.wanted)
        // and whatever a partial view confirmed, the full view confirms too (nobody has to stop)
        for (const [m] of confirmed) {
          const answeredOnce = answers.filter((a) => a.stored.did === m).length <= 1
          if (answeredOnce) expect(full.confirmed).toContain(m)
        }
      }),
      { numRuns: 300 },
    )
  })
})

/** A commune where everyone may take the workload: long rankings, so due times differ. */
const deadlineWorld = fc.record({ n: fc.integer({ min: 3, max: 7 }), replicas: fc.integer({ min: 1, max: 2 }) }).map(({ n, replicas }) =>
  buildWorld({
    owners: 2,
    meshlets: Array.from({ length: n }, (_, i) => ({ owner: i % 2, cpu: 8000, mem: 16384, arch: 'amd64', docker: true, zone: 'a', lists: [0, 1], linked: true })),
    workload: { owner: 0, replicas, cpu: 500, mem: 256, packing: false },
  }),
)

describe('answer deadline (properties)', () => {
  it('safety: a heartbeat past a candidate’s due time and a late answer never let two views confirm more than replicas', () => {
    fc.assert(
      fc.property(deadlineWorld, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(T0 + 10, T0 + 150_000), (world, seed, now) => {
        const rand = mulberry32(seed)
        // round 0 only: each meshlet answers (or not) and heartbeats once, at times around the due times
        const moments = [10, 110, 130, 200, 230, 250, 350, 370, 490].map((s) => T0 + s * 1000)
        const pick = () => moments[Math.floor(rand() * moments.length)]
        const answers = world.meshlets.flatMap((_, i) => {
          const kind = rand()
          if (kind < 0.25) return []
          return [bidRecord(world, { meshlet: i, offsetMs: pick() - T0, decline: kind < 0.4, slots: 1, wrongCid: false, round: 0, rkey: uniqueKey('3kdeadline0', i) })]
        })
        const base = [...world.records, world.workload]
        const uri = world.workload.stored.uri
        const ranked = place(stateOf(base), uri, T0)!.candidates.filter((c) => !c.late)
        const due = new Map(ranked.map((c, k) => [c.did, T0 + (k + 1) * ANSWER_DEADLINE_MS]))
        const heartbeats = world.meshlets.map((m, i) => {
          const capacity = world.records.find((r) => r.collection === 'commune.scheduler.capacity' && r.stored.did === m)!
          const at = pick()
          return { i, at, rec: rec('commune.scheduler.capacity', m, 'self', { ...(capacity.stored.record as object), updatedAt: new Date(at).toISOString() } as never) }
        })
        const repos = world.meshlets.map((m, i) => {
          const own = answers.filter((a) => a.stored.did === m).map((a) => ({ at: Date.parse((a.stored.record as { createdAt: string }).createdAt), rec: a }))
          return [...own, heartbeats[i]].sort((a, b) => a.at - b.at).map((x) => x.rec)
        })
        // honest: none after a heartbeat past its due time, none two intervals late
        const honest = new Set(
          world.meshlets.filter((m, i) => {
            const d = due.get(m) ?? Infinity
            const mine = answers.filter((a) => a.stored.did === m).map((a) => a.stored.record as { createdAt: string })
            const hb = heartbeats[i].at
            return mine.every((a) => Date.parse(a.createdAt) < d + 2 * 60_000 && !(hb >= d && hb <= Date.parse(a.createdAt)))
          }),
        )
        const full = place(stateOf([...base, ...repos.flat()]), uri, now)!
        const confirmed = new Map<string, number>()
        for (let v = 0; v < 3; v++) {
          const seen = repos.flatMap((rs) => rs.slice(0, Math.floor(rand() * (rs.length + 1))))
          const p = place(stateOf([...base, ...seen]), uri, now)!
          for (const s of p.selected) if (s.confirmed && s.replicas > 0) confirmed.set(s.meshlet, Math.max(confirmed.get(s.meshlet) ?? 0, s.replicas))
        }
        const total = [...confirmed].filter(([m]) => honest.has(m)).reduce((a, [, n]) => a + n, 0)
        expect(total).toBeLessThanOrEqual(full.wanted)
        // when all are honest, whatever a partial view confirmed the full view confirms too (nobody
        // has to stop); one that answers after its own heartbeat proved it silent can unseat others
        if (honest.size === world.meshlets.length) for (const [m] of confirmed) expect(full.confirmed).toContain(m)
      }),
      { numRuns: 400 },
    )
  })
})

describe('newcomers (properties)', () => {
  it('safety: a meshlet that came online less than a settled while before the workload never lets the views that have not seen it yet and those that have confirm more than replicas', () => {
    let newcomerConfirmed = 0
    fc.assert(
      fc.property(deadlineWorld, fc.nat(6), fc.integer({ min: 0, max: SETTLE_MS - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (world, k, ago, seed) => {
        const newcomer = world.meshlets[k % world.meshlets.length]
        const rand = mulberry32(seed)
        // the others have been online for long; the newcomer's first heartbeat is `ago` old at the workload's creation
        const records = world.records.map((r) => {
          if (r.collection !== 'commune.scheduler.capacity') return r
          const since = r.stored.did === newcomer ? T0 - ago : T0 - 3_600_000
          return rec('commune.scheduler.capacity', r.stored.did, 'self', { ...(r.stored.record as object), onlineSince: new Date(since).toISOString(), updatedAt: new Date(Math.max(since, T0 - 1000)).toISOString() } as never)
        })
        // everyone answers round 0 once, within its due time
        const declines = rand()
        const answers = world.meshlets.map((_, i) => bidRecord(world, { meshlet: i, offsetMs: 100 + Math.floor(rand() * 5000), decline: rand() < declines, slots: 1, wrongCid: false, round: 0, rkey: uniqueKey('3knewcomer0', i) }))
        const uri = world.workload.stored.uri
        const withoutNewcomer = records.filter((r) => !(r.collection === 'commune.scheduler.capacity' && r.stored.did === newcomer))
        const confirmed = new Set<string>()
        const confirm = (recs: Rec[]) => {
          for (const m of place(stateOf(recs), uri, T0 + 10_000)!.confirmed) confirmed.add(m)
        }
        // views that have not received its heartbeat yet, each with some of the answers
        for (let v = 0; v < 3; v++) confirm([...withoutNewcomer, world.workload, ...prefixPerRepo(answers, rand)])
        // the newcomer's own view (it always holds its own heartbeat and answer), and others that caught up
        const own = answers.filter((a) => a.stored.did === newcomer)
        confirm([...records, world.workload, ...own, ...prefixPerRepo(answers, rand)])
        confirm([...records, world.workload, ...answers])
        if (confirmed.has(newcomer)) newcomerConfirmed++
        const slots = [...confirmed].length
        expect(slots).toBeLessThanOrEqual(place(stateOf([...records, world.workload]), uri, T0)!.wanted)
      }),
      { numRuns: 500 },
    )
    expect(newcomerConfirmed).toBeGreaterThan(10) // the newcomer does take work
  })
})

/** A random prefix of each repo's records, in record order (a firehose delivers a repo in order). */
function prefixPerRepo(recs: Rec[], rand: () => number): Rec[] {
  const byRepo = new Map<string, Rec[]>()
  for (const r of recs) byRepo.set(r.stored.did, [...(byRepo.get(r.stored.did) ?? []), r])
  return [...byRepo.values()].flatMap((rs) => rs.slice(0, Math.floor(rand() * (rs.length + 1))))
}

/** Distinct record keys: two bids at one key would be two versions of one record. */
function uniqueKey(rkey: string, i: number): string {
  return `${rkey.slice(0, 10)}${i.toString(32).padStart(3, 'a')}`
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
