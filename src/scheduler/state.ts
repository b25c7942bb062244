// An in-memory index of the public commune.scheduler.* records a meshlet has seen.
// Deterministic and I/O-free: the firehose shell feeds it, the pure functions read it.
import type {
  BidRecord,
  CapacityRecord,
  ClusterRecord,
  Collection,
  MeshletOwnerRecord,
  MeshletRecord,
  RecordTypes,
  ShareGrantRecord,
  WorkloadRecord,
  WorkloadStatusRecord,
} from '../records/index.js'
import { isEnded } from './replica.js'

export interface Stored<T> {
  uri: string
  cid: string
  /** The repo the record lives in: who signed it. */
  did: string
  rkey: string
  record: T
}

const LINK_COLLECTIONS = new Set<Collection>([
  'commune.scheduler.meshlet',
  'commune.scheduler.meshletOwner',
  'commune.scheduler.cluster',
  'commune.scheduler.shareGrant',
])

export class PublicState {
  /** owner repo: "this meshlet is mine", by uri */
  readonly meshlets = new Map<string, Stored<MeshletRecord>>()
  /** meshlet repo: "my owner is X", by meshlet DID */
  readonly meshletOwners = new Map<string, Stored<MeshletOwnerRecord>>()
  /** by uri */
  readonly clusters = new Map<string, Stored<ClusterRecord>>()
  /** by meshlet DID */
  readonly capacities = new Map<string, Stored<CapacityRecord>>()
  /** by uri */
  readonly workloads = new Map<string, Stored<WorkloadRecord>>()
  /** by uri */
  readonly bids = new Map<string, Stored<BidRecord>>()
  /** by uri */
  readonly statuses = new Map<string, Stored<WorkloadStatusRecord>>()
  /** by uri */
  readonly grants = new Map<string, Stored<ShareGrantRecord>>()
  /** bid uris by the workload uri they reference */
  private readonly bidsByWorkload = new Map<string, Set<string>>()
  /** status uris by the workload uri they reference */
  private readonly statusesByWorkload = new Map<string, Set<string>>()
  /** meshlet record uris by the meshlet DID they claim */
  private readonly claimsByMeshlet = new Map<string, Set<string>>()
  /** meshlet record uris by the owner repo they live in */
  private readonly meshletsByOwner = new Map<string, Set<string>>()
  /** cluster record uris by the meshlet repo they live in */
  private readonly clustersByMeshlet = new Map<string, Set<string>>()
  /** Bumped on every change: lets pure readers memoize per version. */
  version = 0
  /**
   * Bumped only when links, clusters or grants change: who may run whose work changes far
   * less often than bids, statuses and heartbeats, so what derives from it is kept longer.
   */
  linksVersion = 0
  /** Workloads whose record, bids or statuses changed since the last drain (fair share's ledger reads them). */
  private touched: Set<string> | undefined
  /**
   * Finished workloads forgotten after their retention (retire()), by uri → the version
   * retired: a replayed copy of that version, or a bid or status for it, is ignored, so a
   * finished workload can never look unplaced again. Its fair-share entries stay in the ledger.
   */
  private readonly retired = new Map<string, string>()
  /** Latest status updatedAt per `meshlet\0workload owner`, kept over retirement (a grant's last use). */
  private readonly retiredLastStatus = new Map<string, number>()

  private known: string[] | undefined
  /**
   * When each replica held a place on its meshlet, by meshlet DID → status uri: from its
   * status's startedAt to its finishedAt (or the time it ended). Kept over retirement, as the
   * status records stay in their repos, so a workload ranked long after it was created is
   * ranked by the same occupancy in every view, whatever each has retired meanwhile.
   */
  private readonly occupancy = new Map<string, Occupancy>()

  /** Every meshlet with a capacity record or an owner link, sorted; kept until one comes or goes. */
  knownMeshlets(): string[] {
    if (!this.known) {
      const dids = new Set(this.capacities.keys())
      for (const did of this.meshletOwners.keys()) dids.add(did)
      this.known = [...dids].sort()
    }
    return this.known
  }

  /** Upserts a validated record. Returns false when nothing changed (a replayed event). */
  put<C extends Collection>(collection: C, stored: Stored<RecordTypes[C]>): boolean {
    if (this.isRetiredRecord(collection, stored as Stored<never>)) return false
    const before = this.workloadOf(collection, stored.uri)
    const changed = this.apply(collection, stored as Stored<never>)
    if (changed) this.changed(collection, before, this.workloadOf(collection, stored.uri))
    return changed
  }

  private changed(collection: Collection, ...workloads: (string | undefined)[]): void {
    this.version++
    if (LINK_COLLECTIONS.has(collection)) this.linksVersion++
    if (this.touched) for (const w of workloads) if (w) this.touched.add(w)
  }

  /** The workload a record belongs to: itself, or the one a bid or status references. */
  private workloadOf(collection: Collection, uri: string): string | undefined {
    if (collection === 'commune.scheduler.workload') return uri
    if (collection === 'commune.scheduler.bid') return this.bids.get(uri)?.record.workload.uri
    if (collection === 'commune.scheduler.workloadStatus') return this.statuses.get(uri)?.record.workload.uri
    return undefined
  }

  /**
   * The workloads touched since the last call (the first call starts the journal and
   * returns every workload a bid or status references, and every workload). One reader.
   */
  drainTouchedWorkloads(): Set<string> {
    const out = this.touched ?? new Set([...this.workloads.keys(), ...this.bidsByWorkload.keys(), ...this.statusesByWorkload.keys()])
    this.touched = new Set()
    return out
  }

  private apply(collection: Collection, s: Stored<never>): boolean {
    switch (collection) {
      case 'commune.scheduler.meshlet': {
        const old = this.meshlets.get(s.uri)
        if (old) index(this.claimsByMeshlet, old.record.meshlet, s.uri, false)
        index(this.claimsByMeshlet, (s as Stored<MeshletRecord>).record.meshlet, s.uri, true)
        index(this.meshletsByOwner, s.did, s.uri, true)
        return setIfNew(this.meshlets, s.uri, s)
      }
      case 'commune.scheduler.meshletOwner':
        if (s.rkey !== 'self') return false
        if (!this.meshletOwners.has(s.did)) this.known = undefined
        return setIfNew(this.meshletOwners, s.did, s)
      case 'commune.scheduler.cluster':
        index(this.clustersByMeshlet, s.did, s.uri, true)
        return setIfNew(this.clusters, s.uri, s)
      case 'commune.scheduler.capacity':
        if (s.rkey !== 'self') return false
        if (!this.capacities.has(s.did)) this.known = undefined
        return setIfNew(this.capacities, s.did, s)
      case 'commune.scheduler.workload':
        return setIfNew(this.workloads, s.uri, s)
      case 'commune.scheduler.bid': {
        const old = this.bids.get(s.uri)
        if (old) index(this.bidsByWorkload, old.record.workload.uri, s.uri, false)
        index(this.bidsByWorkload, (s as Stored<BidRecord>).record.workload.uri, s.uri, true)
        return setIfNew(this.bids, s.uri, s)
      }
      case 'commune.scheduler.workloadStatus': {
        const old = this.statuses.get(s.uri)
        if (old) index(this.statusesByWorkload, old.record.workload.uri, s.uri, false)
        index(this.statusesByWorkload, (s as Stored<WorkloadStatusRecord>).record.workload.uri, s.uri, true)
        this.occupancyOf(s.did).set(s.uri, (s as Stored<WorkloadStatusRecord>).record)
        return setIfNew(this.statuses, s.uri, s)
      }
      case 'commune.scheduler.shareGrant':
        return setIfNew(this.grants, s.uri, s)
      default:
        return false
    }
  }

  /** Removes a record by its uri. Returns false when it was not there. */
  delete(collection: Collection, did: string, rkey: string): boolean {
    const uri = `at://${did}/${collection}/${rkey}`
    if (collection === 'commune.scheduler.workload' && this.retired.delete(uri)) {
      // deleting a workload takes its history with it, retired or not
      this.changed(collection, uri)
      return true
    }
    const before = this.workloadOf(collection, uri)
    // a retired replica's status is gone from memory, not from its repo: its place goes when the record does
    const freed = collection === 'commune.scheduler.workloadStatus' && !!this.occupancy.get(did)?.delete(uri)
    const changed = this.remove(collection, did, rkey)
    if (changed || freed) this.changed(collection, before)
    return changed
  }

  private remove(collection: Collection, did: string, rkey: string): boolean {
    const uri = `at://${did}/${collection}/${rkey}`
    switch (collection) {
      case 'commune.scheduler.meshlet': {
        const old = this.meshlets.get(uri)
        if (old) index(this.claimsByMeshlet, old.record.meshlet, uri, false)
        index(this.meshletsByOwner, did, uri, false)
        return this.meshlets.delete(uri)
      }
      case 'commune.scheduler.meshletOwner':
        this.known = undefined
        return rkey === 'self' && this.meshletOwners.delete(did)
      case 'commune.scheduler.cluster':
        index(this.clustersByMeshlet, did, uri, false)
        return this.clusters.delete(uri)
      case 'commune.scheduler.capacity':
        this.known = undefined
        return rkey === 'self' && this.capacities.delete(did)
      case 'commune.scheduler.workload':
        return this.workloads.delete(uri)
      case 'commune.scheduler.bid': {
        const old = this.bids.get(uri)
        if (old) index(this.bidsByWorkload, old.record.workload.uri, uri, false)
        return this.bids.delete(uri)
      }
      case 'commune.scheduler.workloadStatus': {
        const old = this.statuses.get(uri)
        if (old) index(this.statusesByWorkload, old.record.workload.uri, uri, false)
        return this.statuses.delete(uri)
      }
      case 'commune.scheduler.shareGrant':
        return this.grants.delete(uri)
      default:
        return false
    }
  }

  /**
   * Forgets a finished workload (call fairshare's retire(), which lets the ledger count it
   * first): its record, bids and statuses leave memory; what fair share and grants need of
   * them stays (the ledger's entries, the latest status time per
   * meshlet and owner), so balances and grant lapses read exactly as before. Returns false
   * when the workload is not here.
   */
  retire(workloadUri: string): boolean {
    const w = this.workloads.get(workloadUri)
    if (!w) return false
    for (const s of this.statusesFor(workloadUri)) {
      const key = `${s.did}\0${w.did}`
      const at = Date.parse(s.record.updatedAt)
      if (!(at <= (this.retiredLastStatus.get(key) ?? -Infinity))) this.retiredLastStatus.set(key, at)
      this.statuses.delete(s.uri)
    }
    for (const b of this.bidsFor(workloadUri)) this.bids.delete(b.uri)
    this.statusesByWorkload.delete(workloadUri)
    this.bidsByWorkload.delete(workloadUri)
    this.workloads.delete(workloadUri)
    this.retired.set(workloadUri, w.cid)
    this.version++
    return true
  }

  /**
   * How many replicas held a place on a meshlet at time `at` (ms), by its status records:
   * started at or before it, not ended by then.
   */
  activeReplicasAt(meshletDid: string, at: number): number {
    return this.occupancy.get(meshletDid)?.activeAt(at) ?? 0
  }

  private occupancyOf(meshletDid: string): Occupancy {
    let o = this.occupancy.get(meshletDid)
    if (!o) this.occupancy.set(meshletDid, (o = new Occupancy()))
    return o
  }

  /** The latest updatedAt of a retired status a meshlet wrote for an owner's workloads. */
  retiredStatusAt(meshletDid: string, ownerDid: string): number {
    return this.retiredLastStatus.get(`${meshletDid}\0${ownerDid}`) ?? -Infinity
  }

  private isRetiredRecord(collection: Collection, s: Stored<never>): boolean {
    if (this.retired.size === 0) return false
    if (collection === 'commune.scheduler.workload') {
      const cid = this.retired.get(s.uri)
      if (cid === undefined) return false
      if (cid === s.cid) return true
      this.retired.delete(s.uri) // a new version: placed anew, and the old one's history goes
      this.touched?.add(s.uri)
      return false
    }
    if (collection === 'commune.scheduler.bid' || collection === 'commune.scheduler.workloadStatus') {
      return this.retired.has((s as Stored<BidRecord>).record.workload.uri)
    }
    return false
  }

  bidsFor(workloadUri: string): Stored<BidRecord>[] {
    return [...(this.bidsByWorkload.get(workloadUri) ?? [])].flatMap((u) => this.bids.get(u) ?? [])
  }

  /** Meshlet records (in owner repos) that claim this meshlet. */
  claimsOf(meshletDid: string): Stored<MeshletRecord>[] {
    return [...(this.claimsByMeshlet.get(meshletDid) ?? [])].flatMap((u) => this.meshlets.get(u) ?? [])
  }

  /** Meshlet records in this owner's repo. */
  meshletsOf(ownerDid: string): Stored<MeshletRecord>[] {
    return [...(this.meshletsByOwner.get(ownerDid) ?? [])].flatMap((u) => this.meshlets.get(u) ?? [])
  }

  /** Cluster records in this meshlet's repo. */
  clustersOf(meshletDid: string): Stored<ClusterRecord>[] {
    return [...(this.clustersByMeshlet.get(meshletDid) ?? [])].flatMap((u) => this.clusters.get(u) ?? [])
  }

  private memo = new Map<string, { version: number; value: unknown }>()

  /** Memoizes a pure function of this state until the state changes. */
  cached<T>(key: string, compute: () => T): T {
    const hit = this.memo.get(key)
    if (hit && hit.version === this.version) return hit.value as T
    const value = compute()
    if (this.memo.size > 1000) this.memo.clear()
    this.memo.set(key, { version: this.version, value })
    return value
  }

  /** Nested by key part (DIDs, kept as they are): a key joined into one new string would be hashed anew on every lookup. */
  private linksMemo = new Map<string, unknown>()
  private linksMemoVersion = -1
  private linksMemoSize = 0

  /** Memoizes a pure function of links, clusters and grants only, until one of those changes. */
  cachedLinks<T>(key: readonly string[], compute: () => T): T {
    if (this.linksMemoVersion !== this.linksVersion || this.linksMemoSize > 100_000) {
      this.linksMemo = new Map()
      this.linksMemoVersion = this.linksVersion
      this.linksMemoSize = 0
    }
    let level = this.linksMemo
    for (let i = 0; i < key.length - 1; i++) {
      let next = level.get(key[i]) as Map<string, unknown> | undefined
      if (!next) level.set(key[i], (next = new Map()))
      level = next
    }
    const last = key[key.length - 1]
    if (level.has(last)) return level.get(last) as T
    const value = compute()
    level.set(last, value)
    this.linksMemoSize++
    return value
  }

  statusesFor(workloadUri: string): Stored<WorkloadStatusRecord>[] {
    return [...(this.statusesByWorkload.get(workloadUri) ?? [])].flatMap((u) => this.statuses.get(u) ?? [])
  }
}

/** One meshlet's replicas as intervals [start, end), counted at a time by two binary searches. */
class Occupancy {
  private readonly intervals = new Map<string, { start: number; end: number }>()
  /** Every interval's start, and every end, sorted: kept so as each record changes. */
  private readonly starts: number[] = []
  private readonly ends: number[] = []

  set(statusUri: string, r: WorkloadStatusRecord): void {
    const start = r.startedAt ? Date.parse(r.startedAt) : NaN
    if (!Number.isFinite(start)) {
      this.delete(statusUri)
      return
    }
    const endedAt = r.finishedAt ?? (isEnded(r) ? r.updatedAt : undefined)
    const parsed = endedAt ? Date.parse(endedAt) : Infinity
    const end = Number.isNaN(parsed) ? Infinity : Math.max(start, parsed)
    const old = this.intervals.get(statusUri)
    if (old && old.start === start && old.end === end) return
    this.delete(statusUri)
    this.intervals.set(statusUri, { start, end })
    this.starts.splice(countUpTo(this.starts, start, false), 0, start)
    this.ends.splice(countUpTo(this.ends, end, false), 0, end)
  }

  delete(statusUri: string): boolean {
    const old = this.intervals.get(statusUri)
    if (!old) return false
    this.intervals.delete(statusUri)
    this.starts.splice(countUpTo(this.starts, old.start, false), 1)
    this.ends.splice(countUpTo(this.ends, old.end, false), 1)
    return true
  }

  activeAt(at: number): number {
    // every interval that ended by `at` also started by it
    return countUpTo(this.starts, at, true) - countUpTo(this.ends, at, true)
  }
}

/** How many entries of a sorted array are below `at` (or at most `at`, when inclusive). */
function countUpTo(sorted: number[], at: number, inclusive: boolean): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid] < at || (inclusive && sorted[mid] === at)) lo = mid + 1
    else hi = mid
  }
  return lo
}

function setIfNew<T extends { cid: string }>(map: Map<string, T>, key: string, value: T): boolean {
  if (map.get(key)?.cid === value.cid) return false
  map.set(key, value)
  return true
}

function index(map: Map<string, Set<string>>, key: string, uri: string, add: boolean): void {
  let set = map.get(key)
  if (add) {
    if (!set) map.set(key, (set = new Set()))
    set.add(uri)
  } else if (set) {
    set.delete(uri)
    if (set.size === 0) map.delete(key)
  }
}
