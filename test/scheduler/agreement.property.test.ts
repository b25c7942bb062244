// Property-based tests of the deterministic core: agreement in any arrival order,
// idempotent replays, validity from signed data only, and convergence of a simulated
// commune with random delivery delays.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { place, type Placement } from '../../src/scheduler/placement.js'
import { PublicState } from '../../src/scheduler/state.js'
import { bidRecord, bidsArb, rec, stateOf, T0, WINDOW, worldArb, type Rec, type World } from './world.js'

// the last is past every meshlet's heartbeat expiry: re-placement rounds are in play
const NOWS = [T0 - 1, T0 + 10, T0 + WINDOW / 2 + 1, T0 + WINDOW + 5000, T0 + 400_000]

const scenario = worldArb.chain((world) => fc.record({ world: fc.constant(world), bids: bidsArb(world.meshlets.length) }))

function recordsOf(world: World, bids: ReturnType<typeof bidRecord>[]): Rec[] {
  return [...world.records, world.workload, ...bids]
}

describe('placement core (properties)', () => {
  it('agreement: the same records in any order give byte-identical output', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 2 ** 31 - 1 }), ({ world, bids }, seed) => {
        const recs = recordsOf(world, bids.map((b, i) => bidRecord(world, { ...b, rkey: uniqueKey(b.rkey, i) })))
        const orders = [recs, [...recs].reverse(), shuffle(recs, seed)]
        for (const now of NOWS) {
          const outs = orders.map((o) => JSON.stringify(place(stateOf(o), world.workload.stored.uri, now)))
          expect(new Set(outs).size).toBe(1)
        }
      }),
      { numRuns: 150 },
    )
  })

  it('replays are idempotent: a record delivered twice, or an unrelated record put and deleted, changes nothing', () => {
    fc.assert(
      fc.property(scenario, ({ world, bids }) => {
        const recs = recordsOf(world, bids.map((b, i) => bidRecord(world, { ...b, rkey: uniqueKey(b.rkey, i) })))
        const once = stateOf(recs)
        const twice = stateOf([...recs, ...recs])
        const noise = rec('commune.scheduler.cluster', world.meshlets[0], 'noise', { members: [], createdAt: new Date(T0).toISOString() })
        twice.put(noise.collection, noise.stored)
        twice.delete(noise.collection, noise.stored.did, noise.stored.rkey)
        const uri = world.workload.stored.uri
        for (const now of NOWS) expect(JSON.stringify(place(twice, uri, now))).toBe(JSON.stringify(place(once, uri, now)))
      }),
      { numRuns: 100 },
    )
  })

  it('validity depends on signed data only: which bids count does not depend on the time of evaluation', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 100_000 }), ({ world, bids }, later) => {
        const state = stateOf(recordsOf(world, bids.map((b, i) => bidRecord(world, { ...b, rkey: uniqueKey(b.rkey, i) }))))
        const uri = world.workload.stored.uri
        const a = place(state, uri, T0 + 5)!
        const b = place(state, uri, T0 + WINDOW + 2000 + later)!
        expect(b.answers).toEqual(a.answers)
        expect(b.rejected).toEqual(a.rejected)
      }),
      { numRuns: 100 },
    )
  })

  it('never selects more than replicas, never a non-candidate, distinct meshlets unless packing', () => {
    fc.assert(
      fc.property(scenario, ({ world, bids }) => {
        const state = stateOf(recordsOf(world, bids.map((b, i) => bidRecord(world, { ...b, rkey: uniqueKey(b.rkey, i) }))))
        const p = place(state, world.workload.stored.uri, T0 + WINDOW + 5000)!
        const total = p.selected.reduce((n, s) => n + s.replicas, 0)
        expect(total).toBe(p.placed)
        expect(total).toBeLessThanOrEqual(p.wanted)
        const candidates = new Set(p.candidates.map((c) => c.did))
        for (const s of p.selected) expect(candidates.has(s.meshlet)).toBe(true)
        expect(new Set(p.selected.map((s) => s.meshlet)).size).toBe(p.selected.length)
        if (!world.workload.stored.record.allowPacking) expect(p.selected.every((s) => s.replicas === 1)).toBe(true)
        // exactly min(replicas, accepting slots): nothing accepted is left unused while short
        const accepting = p.answers.filter((a) => a.accept).reduce((n, a) => n + a.slots, 0)
        expect(p.placed).toBe(Math.min(p.wanted, accepting))
      }),
      { numRuns: 150 },
    )
  })

  it('convergence: simulated meshlets with random delays end agreeing, with exactly min(replicas, accepting slots) running', () => {
    fc.assert(
      fc.property(worldArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 900 }), (world, seed, maxDelay) => {
        const r = simulate(world, seed, maxDelay)
        const finals = r.views.map((v) => JSON.stringify(place(v, world.workload.stored.uri, r.end)!.selected))
        expect(new Set(finals).size).toBe(1)
        const p = place(r.views[0], world.workload.stored.uri, r.end)!
        expect(p.closed).toBe(true)
        // what each meshlet believes it runs, from its own final view
        const running = world.meshlets.map((m, i) => place(r.views[i], world.workload.stored.uri, r.end)!.selected.find((s) => s.meshlet === m)?.replicas ?? 0)
        const accepting = p.answers.filter((a) => a.accept).reduce((n, a) => n + a.slots, 0)
        expect(running.reduce((a, b) => a + b, 0)).toBe(Math.min(p.wanted, accepting))
        // only candidates ever wrote a bid
        const candidates = new Set(p.candidates.map((c) => c.did))
        for (const b of r.bids) expect(candidates.has(b.stored.did)).toBe(true)
        // the write budget: with quick delivery, about `replicas` meshlets answer, not everyone
        if (maxDelay < 100 && r.declines === 0) expect(r.bids.length).toBeLessThanOrEqual(p.wanted + 1)
        // liveness: with quick delivery, willing candidates fill every replica they can
        if (maxDelay < 100 && p.candidates.length <= 8) expect(p.placed).toBe(Math.min(p.wanted, r.willingSlots))
      }),
      { numRuns: 120 },
    )
  })
})

/** Distinct record keys: two bids at one key would be two versions of one record. */
function uniqueKey(rkey: string, i: number): string {
  return `${rkey.slice(0, 10)}${i.toString(32).padStart(3, 'a')}`
}

interface SimResult {
  views: PublicState[]
  bids: Rec[]
  end: number
  declines: number
  willingSlots: number
}

/**
 * A commune in discrete 25 ms steps. Every record reaches every meshlet after its own
 * random delay (its author at once). Each step, each meshlet evaluates its own view and,
 * when invited, answers: accept (if it has live room, decided at random) or decline.
 */
function simulate(world: World, seed: number, maxDelay: number): SimResult {
  const rand = mulberry32(seed)
  const n = world.meshlets.length
  const views = world.meshlets.map(() => new PublicState())
  const inbox: { at: number; to: number; rec: Rec }[] = []
  const deliver = (r: Rec, at: number, from = -1) => {
    for (let i = 0; i < n; i++) inbox.push({ at: i === from ? at : at + Math.floor(rand() * (maxDelay + 1)), to: i, rec: r })
  }
  for (const r of world.records) for (let i = 0; i < n; i++) views[i].put(r.collection, r.stored)
  deliver(world.workload, T0)
  const willing = world.meshlets.map(() => rand() < 0.8)
  const answered = new Set<number>()
  const bids: Rec[] = []
  let declines = 0
  const uri = world.workload.stored.uri
  const end = T0 + WINDOW + 1000 + maxDelay + 200
  for (let t = T0; t <= end; t += 25) {
    for (let k = inbox.length - 1; k >= 0; k--) {
      if (inbox[k].at <= t) {
        const { to, rec: r } = inbox[k]
        views[to].put(r.collection, r.stored)
        inbox.splice(k, 1)
      }
    }
    for (let i = 0; i < n; i++) {
      if (answered.has(i)) continue
      const p: Placement | undefined = place(views[i], uri, t)
      if (!p?.invited.includes(world.meshlets[i])) continue
      answered.add(i)
      const slots = p.candidates.find((c) => c.did === world.meshlets[i])!.slots
      const b = bidRecord(world, { meshlet: i, offsetMs: t - T0, decline: !willing[i], slots, wrongCid: false, round: 0, rkey: `3kbid${String(i).padStart(8, '0')}` })
      if (!willing[i]) declines++
      bids.push(b)
      deliver(b, t, i)
    }
  }
  for (const m of inbox) views[m.to].put(m.rec.collection, m.rec.stored)
  const finalP = place(views[0], uri, end)!
  const willingSlots = finalP.candidates.filter((c) => willing[world.meshlets.indexOf(c.did)]).reduce((s, c) => s + c.slots, 0)
  return { views, bids, end, declines, willingSlots }
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

function mulberry32(a: number): () => number {
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
