// Random communes for the pure core: owners, meshlets, links, clusters, capacities,
// a workload and bids, all as lexicon-valid records ready for PublicState.put.
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { assertValidRecord, type Collection, type RecordTypes } from '../../src/records/index.js'
import { PublicState, type Stored } from '../../src/scheduler/state.js'

export const T0 = Date.parse('2026-01-01T00:00:00.000Z')
export const WINDOW = 3000

export interface Rec {
  collection: Collection
  stored: Stored<RecordTypes[Collection]>
}

const b32 = 'abcdefghijklmnopqrstuvwxyz234567'
export function did(name: string): string {
  const h = createHash('sha256').update(name).digest()
  return `did:plc:${[...h.subarray(0, 24)].map((x) => b32[x % 32]).join('')}`
}
/** A real CIDv1 (dag-cbor, sha-256) of a string: records' strongRefs are format-checked. */
export function cid(s: string): string {
  const h = createHash('sha256').update(s).digest()
  return CID.create(1, 0x71, Digest.create(0x12, h)).toString()
}
const iso = (ms: number) => new Date(ms).toISOString()

export function rec<C extends Collection>(collection: C, repo: string, rkey: string, value: Omit<RecordTypes[C], '$type'>): Rec {
  const record = assertValidRecord(collection, { ...value, $type: collection })
  const uri = `at://${repo}/${collection}/${rkey}`
  return { collection, stored: { uri, cid: cid(uri + JSON.stringify(record)), did: repo, rkey, record } }
}

export function stateOf(recs: Rec[]): PublicState {
  const s = new PublicState()
  for (const r of recs) s.put(r.collection, r.stored)
  return s
}

export interface MeshletSpec {
  owner: number
  cpu: number
  mem: number
  arch: 'amd64' | 'arm64'
  docker: boolean
  zone: 'a' | 'b'
  lists: number[]
  linked: boolean
}

export interface World {
  owners: string[]
  meshlets: string[]
  specs: MeshletSpec[]
  records: Rec[]
  workload: Rec
}

export const meshletArb = (owners: number) =>
  fc.record({
    owner: fc.nat(owners - 1),
    cpu: fc.constantFrom(1000, 2000, 4000, 8000),
    mem: fc.constantFrom(1024, 4096, 16384),
    arch: fc.constantFrom('amd64' as const, 'arm64' as const),
    docker: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    zone: fc.constantFrom('a' as const, 'b' as const),
    lists: fc.subarray(Array.from({ length: owners }, (_, i) => i)),
    linked: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  })

export const workloadArb = (owners: number) =>
  fc.record({
    owner: fc.nat(owners - 1),
    replicas: fc.integer({ min: 1, max: 4 }),
    cpu: fc.constantFrom(250, 500, 1000, 2000, 4000),
    mem: fc.constantFrom(128, 512, 2048),
    packing: fc.boolean(),
    arch: fc.option(fc.constantFrom('amd64', 'arm64'), { nil: undefined }),
    zone: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
  })

export const worldArb = fc
  .integer({ min: 2, max: 6 })
  .chain((owners) =>
    fc.record({
      owners: fc.constant(owners),
      meshlets: fc.array(meshletArb(owners), { minLength: 2, maxLength: 9 }),
      workload: workloadArb(owners),
    }),
  )
  .map(buildWorld)

export interface WorkloadSpec {
  owner: number
  replicas: number
  cpu: number
  mem: number
  packing: boolean
  arch?: string
  zone?: string
}

export function buildWorld(w: { owners: number; meshlets: MeshletSpec[]; workload: WorkloadSpec }): World {
  const owners = Array.from({ length: w.owners }, (_, i) => did(`owner${i}`))
  const meshlets = w.meshlets.map((_, i) => did(`meshlet${i}`))
  const records: Rec[] = []
  w.meshlets.forEach((m, i) => {
    const o = owners[m.owner]
    records.push(rec('commune.scheduler.meshletOwner', meshlets[i], 'self', { owner: o, createdAt: iso(T0 - 100_000) }))
    if (m.linked) records.push(rec('commune.scheduler.meshlet', o, meshlets[i], { meshlet: meshlets[i], createdAt: iso(T0 - 100_000) }))
    records.push(rec('commune.scheduler.cluster', meshlets[i], 'c', { members: m.lists.filter((x) => x !== m.owner).map((x) => owners[x]), createdAt: iso(T0 - 90_000) }))
    const total = { cpuMillis: m.cpu, memoryMiB: m.mem }
    records.push(
      rec('commune.scheduler.capacity', meshlets[i], 'self', {
        total,
        allocatable: total,
        drivers: m.docker ? ['docker', 'process'] : ['process'],
        arch: m.arch,
        labels: [{ key: 'zone', value: m.zone }],
        heartbeatSeconds: 60,
        updatedAt: iso(T0 - 1000),
      }),
    )
  })
  const wl = w.workload
  const workload = rec('commune.scheduler.workload', owners[wl.owner], '3kworkload000', {
    image: 'busybox',
    resources: { cpuMillis: wl.cpu, memoryMiB: wl.mem },
    replicas: wl.replicas,
    allowPacking: wl.packing,
    ...(wl.arch || wl.zone
      ? { constraints: { ...(wl.arch ? { arch: [wl.arch] } : {}), ...(wl.zone ? { labels: [{ key: 'zone', value: wl.zone }] } : {}) } }
      : {}),
    bidWindowMs: WINDOW,
    createdAt: iso(T0),
  })
  return { owners, meshlets, specs: w.meshlets, records, workload }
}

export interface BidSpec {
  meshlet: number
  offsetMs: number
  decline: boolean
  slots: number
  wrongCid: boolean
  round: number
  rkey: string
}

export const bidsArb = (meshlets: number) =>
  fc.array(
    fc.record({
      meshlet: fc.nat(meshlets - 1),
      offsetMs: fc.integer({ min: -500, max: 400_000 }),
      decline: fc.boolean(),
      slots: fc.integer({ min: 1, max: 4 }),
      wrongCid: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      round: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) }),
      rkey: fc.stringMatching(/^3k[a-z2-7]{11}$/),
    }),
    { maxLength: 14 },
  )

export function bidRecord(world: World, b: BidSpec): Rec {
  return rec('commune.scheduler.bid', world.meshlets[b.meshlet], b.rkey, {
    workload: { uri: world.workload.stored.uri, cid: b.wrongCid ? cid('other') : world.workload.stored.cid },
    round: b.round,
    score: 1,
    ...(b.slots > 1 ? { slots: b.slots } : {}),
    ...(b.decline ? { decline: true } : {}),
    createdAt: iso(T0 + b.offsetMs),
  })
}

export interface StatusSpec {
  meshlet: number
  replica: number
  state: 'scheduled' | 'running' | 'succeeded' | 'failed' | 'stopped' | 'yielded'
  exitCode: boolean
  offsetMs: number
}

export const statusesArb = (meshlets: number) =>
  fc.array(
    fc.record({
      meshlet: fc.nat(meshlets - 1),
      replica: fc.integer({ min: 0, max: 2 }),
      state: fc.constantFrom('scheduled' as const, 'running' as const, 'succeeded' as const, 'failed' as const, 'stopped' as const, 'yielded' as const),
      exitCode: fc.boolean(),
      offsetMs: fc.integer({ min: 0, max: 400_000 }),
    }),
    { maxLength: 6 },
  )

export function statusRecord(world: World, s: StatusSpec): Rec {
  return rec('commune.scheduler.workloadStatus', world.meshlets[s.meshlet], `st${s.replica}`, {
    workload: { uri: world.workload.stored.uri, cid: world.workload.stored.cid },
    replica: s.replica,
    state: s.state,
    ...(s.exitCode && (s.state === 'failed' || s.state === 'succeeded') ? { exitCode: s.state === 'failed' ? 1 : 0 } : {}),
    updatedAt: iso(T0 + s.offsetMs),
  })
}

/** A small seeded PRNG: the same seed gives the same run. */
export function mulberry32(a: number): () => number {
  return () => {
    a |= 0
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
