// The appview: its pure parts (health, ledger, discovery) as properties, then the
// service against a real PLC + PDS: backfill of what was written before it started,
// live updates after, a commune found transitively, invalid records skipped and counted,
// pagination, restart from the persisted cursor, and the ledger reproduced without it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevNetwork } from '../src/dev/network.js'
import { closure, references } from '../src/appview/discovery.js'
import { CSV_HEADER, ledger, ledgerCsv, periodOf, PERIODS, type Period } from '../src/appview/ledger.js'
import { health } from '../src/appview/meshlets.js'
import { parseExposition, sampleValue } from '../src/util/metrics.js'
import { fetchRepo } from '../src/appview/backfill.js'
import { Indexer } from '../src/appview/indexer.js'
import { startAppview, type Appview } from '../src/appview/service.js'
import { SqliteStore } from '../src/appview/sqlite-store.js'
import { appviewCommands } from '../src/cli/appview.js'
import type { Values } from '../src/cli/command.js'
import type { OutputSchema as GetWorkloadOutput } from '../src/lexicon/types/commune/appview/getWorkload.js'
import type { OutputSchema as LedgerOutput } from '../src/lexicon/types/commune/appview/getLedger.js'
import type { OutputSchema as ListMeshletsOutput } from '../src/lexicon/types/commune/appview/listMeshlets.js'
import type { OutputSchema as ListWorkloadsOutput } from '../src/lexicon/types/commune/appview/listWorkloads.js'
import { COLLECTIONS, type CapacityRecord, type WorkloadRecord } from '../src/records/index.js'
import { balances } from '../src/scheduler/fairshare.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { silentLogger } from '../src/util/logger.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, capacityRecord, publishCapacity, setCluster, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { cid, did, rec, stateOf, type Rec } from './scheduler/world.js'

// ---------------------------------------------------------------------------------------
// pure parts

describe('appview: health from the heartbeat age', () => {
  const cap = (updatedAt: number, heartbeatSeconds: number): CapacityRecord => capacityRecord({ updatedAt: new Date(updatedAt).toISOString(), heartbeatSeconds })

  it('is green within one interval, yellow within three, red beyond (with the skew allowance), and only gets worse with age', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 3600 }), fc.integer({ min: 0, max: 20_000 }), fc.array(fc.integer({ min: 0, max: 20_000_000 }), { minLength: 2, maxLength: 8 }), (hb, skew, ages) => {
        const t0 = Date.parse('2026-01-01T00:00:00.000Z')
        const c = cap(t0, hb)
        const rank = { green: 0, yellow: 1, red: 2, unknown: 3 }
        const sorted = [...ages].sort((a, b) => a - b)
        const seen = sorted.map((age) => health(c, t0 + age, skew))
        for (let i = 1; i < seen.length; i++) expect(rank[seen[i]]).toBeGreaterThanOrEqual(rank[seen[i - 1]])
        expect(health(c, t0 + hb * 1000 + skew, skew)).toBe('green')
        expect(health(c, t0 + hb * 1000 + skew + 1, skew)).toBe('yellow')
        expect(health(c, t0 + 3 * hb * 1000 + skew, skew)).toBe('yellow')
        expect(health(c, t0 + 3 * hb * 1000 + skew + 1, skew)).toBe('red')
      }),
    )
    expect(health(undefined, Date.now())).toBe('unknown')
  })
})

/** A commune of finished replicas for the ledger: owners, linked meshlets, workloads, offers, statuses at their canonical keys. */
const T0 = Date.parse('2026-03-01T00:00:00.000Z')
const jobArb = fc.record({
  owner: fc.nat(3),
  meshlet: fc.nat(4),
  cpu: fc.constantFrom(250, 1000, 2000),
  mem: fc.constantFrom(64, 512, 4096),
  startMs: fc.integer({ min: 0, max: 20 * 86_400_000 }),
  wallMs: fc.integer({ min: 0, max: 30 * 3_600_000 }),
  cpuUsed: fc.nat(200_000_000),
  offered: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  state: fc.constantFrom('succeeded' as const, 'failed' as const, 'stopped' as const, 'running' as const),
})
const ledgerWorldArb = fc.record({ meshletOwners: fc.array(fc.nat(3), { minLength: 1, maxLength: 5 }), jobs: fc.array(jobArb, { maxLength: 14 }) })

type Job = typeof jobArb extends fc.Arbitrary<infer T> ? T : never

function ledgerWorld(w: { meshletOwners: number[]; jobs: Job[] }): Rec[] {
  const owners = [0, 1, 2, 3].map((i) => did(`lowner${i}`))
  const meshlets = w.meshletOwners.map((_, i) => did(`lmeshlet${i}`))
  const recs: Rec[] = []
  const iso = (t: number) => new Date(t).toISOString()
  w.meshletOwners.forEach((o, i) => {
    recs.push(rec('commune.scheduler.meshletOwner', meshlets[i], 'self', { owner: owners[o], createdAt: iso(T0 - 1e6) }))
    recs.push(rec('commune.scheduler.meshlet', owners[o], meshlets[i], { meshlet: meshlets[i], createdAt: iso(T0 - 1e6) }))
  })
  w.jobs.forEach((j, k) => {
    const m = meshlets[j.meshlet % meshlets.length]
    const created = T0 + j.startMs
    const wl = rec('commune.scheduler.workload', owners[j.owner], `3kjob${String(k).padStart(8, 'a')}`, {
      image: 'busybox',
      resources: { cpuMillis: j.cpu, memoryMiB: j.mem },
      replicas: 1,
      createdAt: iso(created),
    })
    recs.push(wl)
    if (j.offered) {
      recs.push(rec('commune.scheduler.bid', m, `3kbid${String(k).padStart(8, 'a')}`, { workload: { uri: wl.stored.uri, cid: wl.stored.cid }, round: 0, score: 1, createdAt: iso(created + 10) }))
    }
    const finished = j.state !== 'running'
    recs.push(
      rec('commune.scheduler.workloadStatus', m, statusRecordKey(wl.stored.uri, 0), {
        workload: { uri: wl.stored.uri, cid: wl.stored.cid },
        replica: 0,
        state: j.state,
        ...(j.state === 'failed' ? { exitCode: 1 } : {}),
        cpuMillis: j.cpuUsed,
        startedAt: iso(created + 20),
        ...(finished ? { finishedAt: iso(created + 20 + j.wallMs) } : {}),
        updatedAt: iso(created + 20 + j.wallMs),
      }),
    )
  })
  return recs
}

describe('appview: the contribution ledger', () => {
  const FROM = T0 - 86_400_000
  const TO = T0 + 25 * 86_400_000

  it('conserves: in every period, what owners served adds up to what owners used', () => {
    fc.assert(
      fc.property(ledgerWorldArb, fc.constantFrom(...PERIODS), (w, period) => {
        const rows = ledger(stateOf(ledgerWorld(w)), { from: FROM, to: TO, period })
        const byPeriod = new Map<string, { served: number; used: number; mServed: number; mUsed: number; balance: number }>()
        for (const r of rows) {
          const p = byPeriod.get(r.periodStart) ?? { served: 0, used: 0, mServed: 0, mUsed: 0, balance: 0 }
          p.served += r.servedCpuMillis
          p.used += r.usedCpuMillis
          p.mServed += r.servedMemoryMiBSeconds
          p.mUsed += r.usedMemoryMiBSeconds
          p.balance += r.balanceCpuMillis
          byPeriod.set(r.periodStart, p)
          expect(r.balanceCpuMillis).toBe(r.servedCpuMillis - r.usedCpuMillis)
          expect(Date.parse(r.periodStart)).toBeGreaterThanOrEqual(FROM)
          expect(Date.parse(r.periodEnd)).toBeLessThanOrEqual(TO)
        }
        for (const p of byPeriod.values()) {
          expect(p.served).toBe(p.used)
          expect(p.mServed).toBe(p.mUsed)
          expect(p.balance).toBe(0)
        }
      }),
      { numRuns: 150 },
    )
  })

  it('per day, week or month adds up to the whole range', () => {
    fc.assert(
      fc.property(ledgerWorldArb, fc.constantFrom<Period>('day', 'week', 'month'), (w, period) => {
        const state = stateOf(ledgerWorld(w))
        const total = new Map(ledger(state, { from: FROM, to: TO, period: 'total' }).map((r) => [r.owner, r]))
        const sums = new Map<string, number[]>()
        for (const r of ledger(state, { from: FROM, to: TO, period })) {
          const s = sums.get(r.owner) ?? [0, 0, 0, 0]
          sums.set(r.owner, [s[0] + r.servedCpuMillis, s[1] + r.usedCpuMillis, s[2] + r.servedMemoryMiBSeconds, s[3] + r.usedMemoryMiBSeconds])
        }
        expect([...sums.keys()].sort()).toEqual([...total.keys()].sort())
        for (const [owner, s] of sums) {
          const t = total.get(owner)!
          expect(s).toEqual([t.servedCpuMillis, t.usedCpuMillis, t.servedMemoryMiBSeconds, t.usedMemoryMiBSeconds])
        }
      }),
      { numRuns: 100 },
    )
  })

  it('counts cpu exactly as fair share does: its balance over all time is the balance placements rank by', () => {
    fc.assert(
      fc.property(ledgerWorldArb, (w) => {
        const state = stateOf(ledgerWorld(w))
        const asOf = TO
        const fair = balances(state, asOf)
        const rows = ledger(state, { from: 0, to: asOf, period: 'total' })
        const owners = new Set([...fair.keys(), ...rows.map((r) => r.owner)])
        for (const o of owners) expect(rows.find((r) => r.owner === o)?.balanceCpuMillis ?? 0).toBe(fair.get(o) ?? 0)
      }),
      { numRuns: 150 },
    )
  })

  it('periods are UTC days, ISO weeks from Monday and calendar months, clipped to the range', () => {
    const q = (period: Period) => ({ from: Date.parse('2026-03-04T12:00:00Z'), to: Date.parse('2026-05-01T00:00:00Z'), period })
    const at = Date.parse('2026-03-05T10:00:00Z') // a Thursday
    const iso = ([a, b]: [number, number]) => [new Date(a).toISOString(), new Date(b).toISOString()]
    expect(iso(periodOf(at, q('day')))).toEqual(['2026-03-05T00:00:00.000Z', '2026-03-06T00:00:00.000Z'])
    expect(iso(periodOf(at, q('week')))).toEqual(['2026-03-04T12:00:00.000Z', '2026-03-09T00:00:00.000Z'])
    expect(iso(periodOf(Date.parse('2026-04-15T00:00:00Z'), q('month')))).toEqual(['2026-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z'])
    expect(iso(periodOf(at, q('total')))).toEqual(['2026-03-04T12:00:00.000Z', '2026-05-01T00:00:00.000Z'])
  })

  it('writes the settlement CSV with a header, one row per owner per period, and quoted fields only where needed', () => {
    const csv = ledgerCsv([
      { owner: 'did:plc:aaa', periodStart: '2026-03-01T00:00:00.000Z', periodEnd: '2026-03-02T00:00:00.000Z', servedCpuMillis: 1500, usedCpuMillis: 250, balanceCpuMillis: 1250, servedMemoryMiBSeconds: 3_686_400, usedMemoryMiBSeconds: 0, balanceMemoryMiBSeconds: 3_686_400, servedReplicas: 2, usedReplicas: 1 },
    ])
    expect(csv.split('\r\n')).toEqual([CSV_HEADER.join(','), '2026-03-01T00:00:00.000Z,2026-03-02T00:00:00.000Z,did:plc:aaa,1.500,0.250,1.250,1.000000,0.000000,1.000000,2,1', ''])
  })
})

describe('appview: discovery', () => {
  it('finds the commune as the closure of what records name, from any seed, and nothing else', () => {
    const [o1, o2, o3, m1, m2, m3, stranger] = ['o1', 'o2', 'o3', 'm1', 'm2', 'm3', 'x'].map((n) => did(n))
    const t = nowIso()
    const repos = new Map([
      [o1, [{ collection: COLLECTIONS.meshlet, record: { $type: COLLECTIONS.meshlet, meshlet: m1, createdAt: t } }]],
      [m1, [{ collection: COLLECTIONS.meshletOwner, record: { $type: COLLECTIONS.meshletOwner, owner: o1, createdAt: t } }, { collection: COLLECTIONS.cluster, record: { $type: COLLECTIONS.cluster, members: [o2], createdAt: t } }]],
      [o2, [{ collection: COLLECTIONS.meshlet, record: { $type: COLLECTIONS.meshlet, meshlet: m2, createdAt: t } }, { collection: COLLECTIONS.shareGrant, record: { $type: COLLECTIONS.shareGrant, meshlet: m2, recipient: o3, tier: 'a', createdAt: t } }]],
      [o3, [{ collection: COLLECTIONS.meshlet, record: { $type: COLLECTIONS.meshlet, meshlet: m3, createdAt: t } }]],
      [stranger, [{ collection: COLLECTIONS.cluster, record: { $type: COLLECTIONS.cluster, members: [o1], createdAt: t } }]],
    ] as [string, { collection: (typeof COLLECTIONS)[keyof typeof COLLECTIONS]; record: never }[]][])
    const all = new Set([o1, o2, o3, m1, m2, m3])
    for (const seed of [o1, m1, o2]) {
      const c = closure([seed], repos)
      // o3 and m3 only through o2's grant; the stranger names o1 but nothing names the stranger
      if (seed !== o2) expect(c).toEqual(all)
      expect(c.has(stranger)).toBe(false)
    }
    expect(closure([o3], repos)).toEqual(new Set([o3, m3]))
    expect(closure([o1], repos, 3).size).toBe(3)
    expect(references(COLLECTIONS.bid, { $type: COLLECTIONS.bid, workload: { uri: `at://${o2}/${COLLECTIONS.workload}/3kaaa`, cid: cid('x') }, round: 0, score: 1, createdAt: t })).toEqual([o2])
  })
})

// ---------------------------------------------------------------------------------------
// the service against a real PLC + PDS

let net: DevNetwork
let alice: Member, bob: Member, carol: Member
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-appview-'))
const dataDir = path.join(tmp, 'appview')
let av: Appview | undefined

async function xrpc<T>(method: string, params: Record<string, string | number | undefined> = {}): Promise<{ status: number; body: T }> {
  const url = new URL(`/xrpc/commune.appview.${method}`, av!.url)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v))
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as T }
}

const start = (over: Partial<Parameters<typeof startAppview>[0]> = {}) =>
  startAppview({ dataDir, port: 0, plcUrl: net.plcUrl, allowInsecureHttp: true, logger: silentLogger(), ...over })

/** A status record as a meshlet writes it: at the canonical key for its replica. */
function statusOf(w: { uri: string; cid?: string }, state: 'scheduled' | 'running' | 'succeeded' | 'failed', over: Record<string, unknown> = {}) {
  return {
    $type: COLLECTIONS.workloadStatus,
    workload: { uri: w.uri, cid: w.cid! },
    replica: 0,
    round: 0,
    state,
    updatedAt: nowIso(),
    ...over,
  } as const
}

const rkey = (uri: string) => uri.split('/').pop()!

/** Writes a record the lexicon rejects, as any repo can (the PDS does not know our lexicons). */
async function writeInvalid(m: Member['owner'], collection: string, record: Record<string, unknown>) {
  return m.writer.agent.com.atproto.repo.createRecord({ repo: m.did, collection, record: { $type: collection, ...record }, validate: false })
}

let w1: { uri: string; cid?: string }
let w2: { uri: string; cid?: string }

beforeAll(async () => {
  net = await startNetwork()
  alice = await addMember(net, 'alice')
  bob = await addMember(net, 'bob')
  carol = await addMember(net, 'carol')
  // alice lists bob; bob lists alice and carol; carol lists bob: carol is two hops from alice
  await setCluster(alice, 'c', [bob])
  await setCluster(bob, 'c', [alice, carol])
  await setCluster(carol, 'c', [bob])
  for (const m of [alice, bob, carol]) await publishCapacity(m)
  w1 = await alice.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'first' }))
  w2 = await alice.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'second' }))
  await bob.meshlet.writer.create(COLLECTIONS.bid, { $type: COLLECTIONS.bid, workload: { uri: w1.uri, cid: w1.cid! }, round: 0, score: 1000, createdAt: nowIso() })
  await bob.meshlet.writer.put(COLLECTIONS.workloadStatus, statusRecordKey(w1.uri, 0), statusOf(w1, 'running', { startedAt: nowIso() }))
  await writeInvalid(carol.owner, COLLECTIONS.workload, { image: '', replicas: 0, resources: { cpuMillis: 0, memoryMiB: 1 }, createdAt: nowIso() })
}, 120_000)

afterAll(async () => {
  await av?.close()
  await net?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('appview against a real PDS', () => {
  it('backfills, verified, every repo of the commune written before it started, found from one seed', async () => {
    av = await start({ seeds: [alice.owner.did] })
    const repos = av.indexer.repoList()
    const everyone = [alice, bob, carol].flatMap((m) => [m.owner.did, m.meshlet.did])
    expect(repos.map((r) => r.did).sort()).toEqual([...everyone].sort())
    expect(repos.every((r) => r.status === 'ready')).toBe(true)

    const list = await xrpc<ListWorkloadsOutput>('listWorkloads')
    expect(list.status).toBe(200)
    expect(list.body.workloads.map((w) => w.name)).toEqual(['second', 'first'])

    const one = await xrpc<GetWorkloadOutput>('getWorkload', { uri: w1.uri })
    expect(one.status).toBe(200)
    expect(one.body.workload).toMatchObject({ uri: w1.uri, cid: w1.cid, owner: alice.owner.did, state: 'running' })
    expect(one.body.workload.statuses).toEqual([expect.objectContaining({ meshlet: bob.meshlet.did, replica: 0, state: 'running' })])
    expect(one.body.placement.selected).toEqual([expect.objectContaining({ meshlet: bob.meshlet.did, via: 'held' })])
    // every other meshlet is listed with the reason it takes no replica
    expect(one.body.placement.whyNot.map((x) => x.meshlet).sort()).toEqual([alice.meshlet.did, carol.meshlet.did].sort())
    expect(one.body.timeline.map((e) => e.kind)).toEqual(['submitted', 'offered', 'placed', 'running'])

    const meshlets = await xrpc<ListMeshletsOutput>('listMeshlets')
    const expected = [alice, bob, carol].map((m) => ({ did: m.meshlet.did, owner: m.owner.did, health: 'green', running: m === bob ? 1 : 0 }))
    expect(meshlets.body.meshlets.map((m) => ({ did: m.did, owner: m.owner, health: m.health, running: m.running }))).toEqual(expected.sort((a, b) => (a.did < b.did ? -1 : 1)))
    // the invalid workload in carol's repo was skipped, and counted
    expect(av.indexer.stats.invalid).toBe(1)
    const metrics = parseExposition(await (await fetch(`${av.url}/metrics`)).text())
    expect(sampleValue(metrics, 'meshlet_appview_invalid_records_total', { collection: COLLECTIONS.workload })).toBe(1)
    expect(sampleValue(metrics, 'meshlet_appview_invalid_records', { collection: COLLECTIONS.workload })).toBe(1)
    expect(sampleValue(metrics, 'meshlet_appview_records', { collection: COLLECTIONS.workload })).toBe(2)
    expect(sampleValue(metrics, 'meshlet_appview_repos', { status: 'ready' })).toBe(6)
  })

  it('follows live updates: new records, changed states, deletions, and members who join later', async () => {
    const w3 = await alice.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'third' }))
    await waitFor(async () => (await xrpc<ListWorkloadsOutput>('listWorkloads')).body.workloads.some((w) => w.uri === w3.uri), { timeoutMs: 30_000, what: 'the new workload listed' })

    await bob.meshlet.writer.put(COLLECTIONS.workloadStatus, statusRecordKey(w1.uri, 0), statusOf(w1, 'succeeded', { exitCode: 0, startedAt: nowIso(), finishedAt: nowIso() }))
    await waitFor(async () => (await xrpc<ListWorkloadsOutput>('listWorkloads', { state: 'succeeded' })).body.workloads.some((w) => w.uri === w1.uri), {
      timeoutMs: 30_000,
      what: 'the first workload succeeded',
    })
    const timeline = (await xrpc<GetWorkloadOutput>('getWorkload', { uri: w1.uri })).body.timeline.map((e) => e.kind)
    // it saw the running version go by on the firehose, and the finished one
    expect(timeline).toEqual(['submitted', 'offered', 'placed', 'running', 'succeeded'])

    await alice.owner.writer.delete(COLLECTIONS.workload, rkey(w2.uri))
    await waitFor(async () => (await xrpc('getWorkload', { uri: w2.uri })).status === 400, { timeoutMs: 30_000, what: 'the deleted workload gone' })
    const gone = await xrpc<{ error: string }>('getWorkload', { uri: w2.uri })
    expect(gone.body.error).toBe('WorkloadNotFound')
    expect((await xrpc<ListWorkloadsOutput>('listWorkloads')).body.workloads.some((w) => w.uri === w2.uri)).toBe(false)

    // dave wrote his records before anyone named him; carol's meshlet lists him now
    const dave = await addMember(net, 'dave')
    await publishCapacity(dave)
    const dw = await dave.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'daves' }))
    await setCluster(carol, 'c', [bob, dave])
    await waitFor(async () => (await xrpc<ListWorkloadsOutput>('listWorkloads', { owner: dave.owner.did })).body.workloads.length === 1, { timeoutMs: 30_000, what: "dave's workload" })
    await waitFor(() => av!.indexer.repoStatus(dave.meshlet.did) === 'ready', { timeoutMs: 30_000, what: "dave's meshlet backfilled" })
    expect((await xrpc<GetWorkloadOutput>('getWorkload', { uri: dw.uri })).body.workload.name).toBe('daves')
  })

  it('keeps live events that arrive during a backfill: those inside the snapshot are dropped, the rest applied in order', async () => {
    const fay = await addMember(net, 'fay')
    await publishCapacity(fay, { labels: [{ key: 'n', value: '0' }] })
    const label = (n: number) => capacityRecord({ labels: [{ key: 'n', value: String(n) }] })
    const store = new SqliteStore(':memory:')
    // the real getRepo, with commits written around it: before it (so inside the snapshot) and while its answer is on the way
    const readRepo = async (pds: string, repo: string) => {
      if (repo !== fay.meshlet.did) return fetchRepo(net.idResolver, pds, repo)
      for (const n of [1, 2, 3]) await fay.meshlet.writer.put(COLLECTIONS.capacity, 'self', label(n))
      await waitFor(() => indexer.stats.buffered >= 3, { timeoutMs: 30_000, what: 'three events buffered' })
      const snap = await fetchRepo(net.idResolver, pds, repo)
      for (const n of [4, 5, 6]) await fay.meshlet.writer.put(COLLECTIONS.capacity, 'self', label(n))
      await waitFor(() => indexer.stats.buffered >= 6, { timeoutMs: 30_000, what: 'six events buffered' })
      return snap
    }
    const indexer: Indexer = new Indexer({ store, idResolver: net.idResolver, logger: silentLogger(), seeds: [carol.meshlet.did], readRepo })
    try {
      await indexer.start()
      // its subscription is live once a commit written now arrives
      const probe = await carol.meshlet.writer.put(COLLECTIONS.capacity, 'self', capacityRecord())
      await waitFor(() => indexer.state.capacities.get(carol.meshlet.did)?.cid === probe.cid, { timeoutMs: 30_000, what: 'the probe' })
      const buffered = indexer.stats.buffered
      const dropped = indexer.stats.dropped
      await setCluster(carol, 'c', [bob, fay])
      await waitFor(() => indexer.repoStatus(fay.meshlet.did) === 'ready', { timeoutMs: 60_000, what: "fay's meshlet backfilled" })
      expect(indexer.stats.buffered - buffered).toBe(6)
      expect(indexer.stats.dropped - dropped).toBe(3)
      expect(indexer.state.capacities.get(fay.meshlet.did)!.record.labels).toEqual([{ key: 'n', value: '6' }])
      const stored = await store.allRecords()
      expect(JSON.parse(stored.find((r) => r.did === fay.meshlet.did && r.collection === COLLECTIONS.capacity)!.json).labels).toEqual([{ key: 'n', value: '6' }])
      expect((await store.repos()).find((r) => r.did === fay.meshlet.did)?.status).toBe('ready')
    } finally {
      await indexer.close()
      await store.close()
    }
  })

  it('skips and counts a record that fails its lexicon, live as in backfill, and keeps the valid ones', async () => {
    const before = av!.indexer.stats.invalid
    await writeInvalid(bob.meshlet, COLLECTIONS.workloadStatus, { workload: { uri: w1.uri, cid: w1.cid }, replica: 0, updatedAt: nowIso() }) // no state
    const ok = await bob.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'after-invalid' }))
    await waitFor(async () => (await xrpc<ListWorkloadsOutput>('listWorkloads', { owner: bob.owner.did })).body.workloads.some((w) => w.uri === ok.uri), { timeoutMs: 30_000, what: 'the valid record after it' })
    expect(av!.indexer.stats.invalid).toBe(before + 1)
    const metrics = parseExposition(await (await fetch(`${av!.url}/metrics`)).text())
    expect(sampleValue(metrics, 'meshlet_appview_invalid_records_total', { collection: COLLECTIONS.workloadStatus })).toBe(1)
    // the status that was valid before is still believed
    expect((await xrpc<GetWorkloadOutput>('getWorkload', { uri: w1.uri })).body.workload.state).toBe('succeeded')
  })

  it('pages through workloads with a cursor, newest first, by owner and by state; bad input is one clear error', async () => {
    const made: string[] = []
    for (let i = 0; i < 7; i++) made.push((await carol.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: `page-${i}` }))).uri)
    await waitFor(async () => (await xrpc<ListWorkloadsOutput>('listWorkloads', { owner: carol.owner.did, limit: 100 })).body.workloads.length === 7, { timeoutMs: 30_000, what: "carol's workloads" })
    const seen: ListWorkloadsOutput['workloads'] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page: { status: number; body: ListWorkloadsOutput } = await xrpc<ListWorkloadsOutput>('listWorkloads', { owner: carol.owner.did, limit: 3, cursor })
      expect(page.status).toBe(200)
      seen.push(...page.body.workloads)
      cursor = page.body.cursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(seen.map((w) => w.uri).sort()).toEqual([...made].sort())
    const order = seen.map((w) => `${new Date(w.createdAt).toISOString()}|${w.uri}`)
    expect(order).toEqual([...order].sort().reverse())

    // the whole commune, two at a time, sees every workload once
    const all = new Set<string>()
    cursor = undefined
    do {
      const page: { body: ListWorkloadsOutput } = await xrpc<ListWorkloadsOutput>('listWorkloads', { limit: 2, cursor })
      for (const w of page.body.workloads) {
        expect(all.has(w.uri)).toBe(false)
        all.add(w.uri)
      }
      cursor = page.body.cursor
    } while (cursor)
    expect(all.size).toBe(av!.ctx.state.workloads.size)

    const succeeded = await xrpc<ListWorkloadsOutput>('listWorkloads', { state: 'succeeded' })
    expect(succeeded.body.workloads.map((w) => w.uri)).toEqual([w1.uri])
    for (const bad of [{ cursor: 'nonsense' }, { state: 'exploded' }, { limit: 0 }, { owner: 'not-a-did' }]) {
      const r = await xrpc<{ error: string; message: string }>('listWorkloads', bad)
      expect(r.status, JSON.stringify(bad)).toBe(400)
      expect(r.body.message.split('\n')).toHaveLength(1)
    }
    expect((await xrpc('getWorkload', { uri: 'at://nope' })).status).toBe(400)
    expect((await xrpc('getLedger', { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' })).status).toBe(400)
  })

  it('restarts from its persisted cursor: what was written while it was down arrives without a new backfill', async () => {
    await av!.close()
    av = undefined
    const down = await alice.owner.writer.create(COLLECTIONS.workload, workloadRecord({ name: 'while-down' }))
    await bob.meshlet.writer.put(COLLECTIONS.capacity, 'self', capacityRecord({ draining: true }))
    // no seeds this time: the commune is remembered
    av = await start()
    expect(av.indexer.repoList().every((r) => r.status === 'ready')).toBe(true)
    await waitFor(() => av!.ctx.state.workloads.has(down.uri) && av!.ctx.state.capacities.get(bob.meshlet.did)?.record.draining === true, {
      timeoutMs: 30_000,
      what: 'the records written while it was down',
    })
    expect(av.indexer.stats.backfills).toBe(0)
    expect(av.indexer.stats.firehoseApplied).toBeGreaterThanOrEqual(2)
    // what it had before is all still there, from its own store
    expect((await xrpc<GetWorkloadOutput>('getWorkload', { uri: w1.uri })).body.workload.state).toBe('succeeded')
    const meshlets = await xrpc<ListMeshletsOutput>('listMeshlets', { owner: bob.owner.did })
    expect(meshlets.body.meshlets).toEqual([expect.objectContaining({ did: bob.meshlet.did, draining: true })])
  })

  it('serves a ledger anyone can reproduce from the repos: the API, the CSV and `meshlet ledger` agree', async () => {
    // two finished replicas on 2025-03-10: alice's job on bob's meshlet, carol's on alice's (its cpu capped at what it asked for)
    const day = '2025-03-10'
    const t = (s: number) => new Date(Date.parse(`${day}T10:00:00.000Z`) + s * 1000).toISOString()
    const job = async (owner: Member, runner: Member, cpuMillis: number, memoryMiB: number, used: number, wallS: number) => {
      const w = await owner.owner.writer.create(COLLECTIONS.workload, { ...workloadRecord(), resources: { cpuMillis, memoryMiB }, createdAt: t(0) } as WorkloadRecord)
      await runner.meshlet.writer.create(COLLECTIONS.bid, { $type: COLLECTIONS.bid, workload: { uri: w.uri, cid: w.cid! }, round: 0, score: 1, createdAt: t(1) })
      await runner.meshlet.writer.put(COLLECTIONS.workloadStatus, statusRecordKey(w.uri, 0), statusOf(w, 'succeeded', { exitCode: 0, cpuMillis: used, startedAt: t(1), finishedAt: t(1 + wallS), updatedAt: t(1 + wallS) }))
      return w
    }
    await job(alice, bob, 1000, 512, 4000, 10) // counts 4000 ms cpu, 512 MiB × 10 s
    const last = await job(carol, alice, 500, 64, 99_999, 2) // capped at 500 × 2 s = 1000 ms
    await waitFor(() => av!.ctx.state.statuses.has(`at://${alice.meshlet.did}/${COLLECTIONS.workloadStatus}/${statusRecordKey(last.uri, 0)}`), { timeoutMs: 30_000, what: 'the last status' })

    const range = { from: `${day}T00:00:00.000Z`, to: '2025-03-11T00:00:00.000Z' }
    const api = await xrpc<LedgerOutput>('getLedger', range)
    const row = (o: Member) => api.body.rows.find((r) => r.owner === o.owner.did)
    expect(row(alice)).toMatchObject({ servedCpuMillis: 1000, usedCpuMillis: 4000, balanceCpuMillis: -3000, usedMemoryMiBSeconds: 5120, servedMemoryMiBSeconds: 128, servedReplicas: 1, usedReplicas: 1 })
    expect(row(bob)).toMatchObject({ servedCpuMillis: 4000, usedCpuMillis: 0, servedMemoryMiBSeconds: 5120 })
    expect(row(carol)).toMatchObject({ servedCpuMillis: 0, usedCpuMillis: 1000, usedMemoryMiBSeconds: 128 })
    expect(api.body.rows).toHaveLength(3)

    const csv = await (await fetch(`${av!.url}/ledger.csv?${new URLSearchParams(range)}`)).text()
    expect(csv.split('\r\n')[0]).toBe(CSV_HEADER.join(','))
    // no appview: the CLI reads the repos itself, from one seed, with the same function
    const direct = await runCommand('ledger', ['--seed', carol.meshlet.did, '--from', day, '--to', '2025-03-11', '--csv', '--plc', net.plcUrl, '--insecure-http'])
    expect(direct.stdout).toBe(csv)
    const viaAppview = await runCommand('ledger', ['--appview', av!.url, '--from', day, '--to', '2025-03-11', '--json'])
    expect((JSON.parse(viaAppview.stdout) as LedgerOutput).rows).toEqual(api.body.rows)
    await expect(runCommand('ledger', ['--appview', av!.url, '--from', 'yesterday-ish'])).rejects.toThrow(/--from is not a date: yesterday-ish/)
    await expect(runCommand('ledger', ['--from', day])).rejects.toThrow(/pass --appview URL/)
    await expect(runCommand('appview', ['--data-dir', path.join(tmp, 'empty'), '--seed', 'bob.example.com'])).rejects.toThrow(/not a DID: bob.example.com/)
  })
})

/** Runs one of this module's commands in-process, as `meshlet` would, capturing its stdout. */
async function runCommand(name: keyof typeof appviewCommands, args: string[]): Promise<{ stdout: string }> {
  const cmd = appviewCommands[name]
  const { values, positionals } = parseArgs({ args, options: cmd.options, allowPositionals: true, strict: true })
  let stdout = ''
  const log = console.log
  const write = process.stdout.write.bind(process.stdout)
  console.log = (...a: unknown[]) => void (stdout += `${a.join(' ')}\n`)
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write
  try {
    await cmd.run(values as Values, positionals)
  } finally {
    console.log = log
    process.stdout.write = write
  }
  return { stdout }
}
