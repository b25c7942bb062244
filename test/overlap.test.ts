// Overlapping clusters across three PDSes: every meshlet that ranks a workload follows
// every candidate of it (one hop beyond its own members, through cluster formation),
// so all of them compute the same placement and exactly min(replicas, candidates) run.
//
//   PDS1: alice, bob    cluster x = {alice, bob, carol}
//   PDS2: carol, dave   cluster y = {carol, dave, erin}
//   PDS3: erin, frank   cluster z = {erin, frank}          (+ gus on PDS4, later)
//
// alice ranks carol's work (x) whose candidates include erin (y, on PDS3): alice must
// follow erin although she shares no cluster with her. frank ranks only erin's and his
// own work; he never needs alice or bob, so he never follows PDS1 (the hop is bounded).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { place, rankCandidates } from '../src/scheduler/placement.js'
import { isEnded } from '../src/scheduler/replica.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, setCluster, startNetwork, type Member, workloadRecord } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

const WAIT = { timeoutMs: 90_000 }

let net: DevNetwork
let reader: RepoReader
const pds: string[] = []
const members = new Map<string, Member>()
const daemons = new Map<string, Meshlet>()
const clusters: Record<string, string[]> = {
  x: ['alice', 'bob', 'carol'],
  y: ['carol', 'dave', 'erin'],
  z: ['erin', 'frank'],
}
const home: Record<string, number> = { alice: 0, bob: 0, carol: 1, dave: 1, erin: 2, frank: 2 }

const m = (name: string) => members.get(name)!
const d = (name: string) => daemons.get(name)!
const ws = (url: string) => url.replace(/^http/, 'ws').replace(/\/$/, '')
const nameOfMeshlet = (did: string) => [...members.values()].find((x) => x.meshlet.did === did)?.name ?? did
const nameOfOwner = (did: string) => [...members.values()].find((x) => x.owner.did === did)?.name ?? did

/** Owners that share a cluster with `name`, itself included. */
function mates(name: string): string[] {
  const out = new Set([name])
  for (const c of Object.values(clusters)) if (c.includes(name)) for (const n of c) out.add(n)
  return [...out].sort()
}

/** The truth, from the topology: the meshlets that may take `owner`'s work (everyone lists every cluster mate). */
const expectedCandidates = (owner: string) => mates(owner).map((n) => m(n).meshlet.did).sort()

/** Writes every member's cluster records from the topology. */
async function writeClusters(names: string[]): Promise<void> {
  await Promise.all(
    names.flatMap((n) =>
      Object.entries(clusters)
        .filter(([, c]) => c.includes(n))
        .map(([cname, c]) => setCluster(m(n), cname, c.filter((x) => x !== n).map(m))),
    ),
  )
}

const workload = workloadRecord

/** The candidates a daemon sees for a fresh workload of `owner`, without writing one. */
function seenCandidates(name: string, owner: string): string[] {
  const did = m(owner).owner.did
  const probe = { uri: `at://${did}/${COLLECTIONS.workload}/probe`, cid: 'probe', did, rkey: 'probe', record: workload() }
  return rankCandidates(d(name).ctx.state, probe)
    .candidates.map((c) => c.did)
    .sort()
}

/** Daemons whose formation covers `owner`: they take its work and must see all its candidates. */
const rankers = (owner: string) => [...daemons.keys()].filter((n) => d(n).ctx.formation.covers(m(owner).owner.did)).sort()

function view(name: string, uri: string): string {
  const p = place(d(name).ctx.state, uri, Date.now())
  return JSON.stringify(p ? { phase: p.phase, settled: p.settled, selected: p.selected, placed: p.placed, candidates: p.candidates } : null)
}

/** Waits until every ranker of the workload computes the same settled placement. */
async function agreed(uri: string, names: string[]) {
  let last: string[] = []
  try {
    return await waitFor(
      () => {
        last = names.map((n) => view(n, uri))
        const first = JSON.parse(last[0])
        return first?.settled && last.every((v) => v === last[0]) ? first : undefined
      },
      { ...WAIT, what: `agreement on ${uri}` },
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${names.map((n, i) => `\n${n}: ${last[i]}`).join('')}`)
  }
}

/** Every bid and live status about `uri`, read from each meshlet's own repo (the ground truth). */
async function repoRecords(uri: string) {
  const bids: string[] = []
  const live: string[] = []
  await Promise.all(
    [...members.values()].map(async (x) => {
      const [b, s] = await Promise.all([reader.list(x.meshlet.did, COLLECTIONS.bid), reader.list(x.meshlet.did, COLLECTIONS.workloadStatus)])
      for (const r of b.records) if (r.record.workload.uri === uri) bids.push(x.meshlet.did)
      for (const r of s.records) if (r.record.workload.uri === uri && !isEnded(r.record)) live.push(x.meshlet.did)
    }),
  )
  return { bids: bids.sort(), live: live.sort() }
}

/** Submits, then checks agreement, counts and who wrote what. */
async function checkWorkload(owner: string, uri: string, replicas: number) {
  const expected = expectedCandidates(owner)
  const want = Math.min(replicas, expected.length)
  const names = rankers(owner)
  // every ranker sees the workload, on its own PDS or a followed one
  await waitFor(() => names.every((n) => d(n).ctx.state.workloads.has(uri)), { ...WAIT, what: `${uri} seen by ${names}` })
  const p = await agreed(uri, names)
  const candidates = p.candidates.map((c: { did: string }) => c.did).sort()
  expect(candidates.map(nameOfMeshlet)).toEqual(expected.map(nameOfMeshlet))
  expect(p.placed).toBe(want)
  expect(p.phase).toBe(want === replicas ? 'placed' : 'queued')
  const selected: string[] = p.selected.map((s: { meshlet: string }) => s.meshlet)
  expect(new Set(selected).size).toBe(want)
  for (const s of selected) expect(expected).toContain(s)
  // exactly `want` replicas live (driver none: `scheduled`), on the selected meshlets only
  const truth = await waitFor(
    async () => {
      const r = await repoRecords(uri)
      return r.live.length === want ? r : undefined
    },
    { ...WAIT, what: `${want} live replicas of ${uri}` },
  )
  expect(truth.live).toEqual([...selected].sort())
  // only candidates ever wrote a bid for it
  for (const b of truth.bids) expect(expected).toContain(b)
  for (const [n, x] of daemons) {
    if (!expected.includes(x.did)) expect({ n, writes: x.ctx.engine.writesPerWorkload.get(uri) }).toEqual({ n, writes: undefined })
  }
  return p
}

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  pds.push(net.pdsUrl, await net.addPds(), await net.addPds())
  for (const [name, i] of Object.entries(home)) members.set(name, await addMember(net, name, pds[i]))
  await writeClusters([...members.keys()])
  // no firehose config: each daemon follows exactly the PDSes formation finds
  for (const name of members.keys()) daemons.set(name, await startMeshlet(net, m(name)))
}, 180_000)

afterAll(async () => {
  await Promise.all([...daemons.values()].map((x) => x.close()))
  await net?.close()
})

describe('overlapping clusters across three PDSes (real PLC, PDSes, daemons)', () => {
  const uris = new Map<string, { owner: string; replicas: number }>()

  it('follows the candidates of every owner it takes work from, one hop beyond its members', async () => {
    for (const name of daemons.keys()) {
      // it takes work from its own owner and its cluster mates, nobody else
      expect(d(name).ctx.formation.covered().map(nameOfOwner).sort()).toEqual(mates(name))
      // and sees every candidate of each of them, capacity and link included
      for (const owner of mates(name)) {
        await waitFor(() => JSON.stringify(seenCandidates(name, owner)) === JSON.stringify(expectedCandidates(owner)), {
          ...WAIT,
          what: `${name} sees the candidates of ${owner}'s work`,
        })
      }
    }
    // alice shares no cluster with erin but must see her (a candidate for carol's work)
    expect(d('alice').ctx.ingestor.sources()).toContain(ws(pds[2]))
    // bounded: frank's owners (frank, erin) have no candidate on PDS1
    expect(d('frank').ctx.ingestor.sources()).not.toContain(ws(pds[0]))
    expect(d('frank').ctx.state.meshletOwners.has(m('alice').meshlet.did)).toBe(false)
  }, 120_000)

  it('places workloads of owners in different clusters identically on every meshlet that ranks them', async () => {
    const specs: [string, number][] = [
      ['alice', 2],
      ['bob', 1],
      ['carol', 3],
      ['dave', 2],
      ['erin', 3],
      ['frank', 3], // two candidates (frank, erin): one replica stays queued
      ['carol', 1],
      ['erin', 1],
    ]
    const created = await Promise.all(
      specs.map(async ([owner, replicas], i) => {
        const res = await m(owner).owner.writer.create(COLLECTIONS.workload, workload({ name: `${owner}-${i}`, replicas }))
        return { uri: res.uri, owner, replicas }
      }),
    )
    for (const c of created) uris.set(c.uri, c)
    for (const c of created) await checkWorkload(c.owner, c.uri, c.replicas)
    // a meshlet only ever counts itself a candidate for work it ranks with a full view
    for (const [name, x] of daemons) {
      for (const w of x.ctx.state.workloads.values()) {
        const p = place(x.ctx.state, w.uri, Date.now())!
        if (p.candidates.some((c) => c.did === x.did)) expect({ name, covers: x.ctx.formation.covers(w.did) }).toEqual({ name, covers: true })
      }
    }
  }, 300_000)

  it('follows a member added after start: the new candidate is seen by everyone ranking its owners', async () => {
    // gus, on a fourth PDS nobody follows yet, joins cluster z
    pds.push(await net.addPds())
    members.set('gus', await addMember(net, 'gus', pds[3]))
    clusters.z.push('gus')
    await writeClusters(['gus'])
    daemons.set('gus', await startMeshlet(net, m('gus')))
    await writeClusters(['erin', 'frank'])

    // carol and dave rank erin's work (y) and learn of gus only through erin's meshlet's cluster record
    for (const name of ['erin', 'frank', 'carol', 'dave', 'gus']) {
      await waitFor(() => JSON.stringify(seenCandidates(name, 'erin')) === JSON.stringify(expectedCandidates('erin')), {
        ...WAIT,
        what: `${name} sees gus as a candidate for erin's work`,
      })
    }
    for (const name of ['erin', 'frank', 'gus']) {
      await waitFor(() => JSON.stringify(seenCandidates(name, 'frank')) === JSON.stringify(expectedCandidates('frank')), { ...WAIT, what: `${name}: frank's candidates` })
    }
    expect(rankers('erin')).toEqual(['carol', 'dave', 'erin', 'frank', 'gus'])
    expect(d('carol').ctx.ingestor.sources()).toContain(ws(pds[3]))
    expect(d('dave').ctx.ingestor.sources()).toContain(ws(pds[3]))
    // alice and bob do not rank erin's or frank's work: gus is beyond their hop
    expect(d('alice').ctx.formation.covers(m('gus').owner.did)).toBe(false)
    expect(d('alice').ctx.ingestor.sources()).not.toContain(ws(pds[3]))

    // a workload for all five of erin's candidates places one replica on each, gus included
    const res = await m('erin').owner.writer.create(COLLECTIONS.workload, workload({ name: 'erin-late', replicas: 5 }))
    const p = await checkWorkload('erin', res.uri, 5)
    expect(p.selected.map((s: { meshlet: string }) => s.meshlet)).toContain(m('gus').meshlet.did)

    // the earlier workloads still agree among the rankers that see them (gus joined after they were created)
    for (const [uri, c] of uris) {
      const seers = rankers(c.owner).filter((n) => d(n).ctx.state.workloads.has(uri))
      await agreed(uri, seers)
    }
  }, 300_000)
})
