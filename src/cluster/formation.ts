// Cluster formation, following the seed's startup process: read our cluster records,
// resolve each member owner to their meshlet(s) from their own repo, read those
// meshlets' links and cluster records, and keep only the mutually verified. The records
// land in the shared PublicState; membership itself is the pure clusterMembership().
// After startup the firehose keeps it current; a newly named owner is fetched on sight.
//
// What a meshlet must see. It ranks the workloads of the owners it takes work from
// (its own owner, the owners its cluster records list, the recipients of grants of it),
// and every meshlet ranking a workload must see the same candidates: for owner O, the
// meshlets of every owner P that O's meshlets list and that list O back (and O's own).
// Those P are not necessarily our members — P may share a different cluster with O. So
// formation goes exactly one hop further: for each owner we take work from ("covered"),
// it reads the owners that the covered owner's meshlets list, their meshlets, links,
// cluster records and capacity, and follows their PDSes. It stops there: the owners
// that those second-hop meshlets list are not fetched (no transitive crawl).
import type { Logger } from 'pino'
import { AtUri } from '@atproto/syntax'
import { COLLECTIONS, type BidRecord, type Collection, type WorkloadStatusRecord } from '../records/index.js'
import { isFinal } from '../scheduler/replica.js'
import type { RepoReader } from '../repo/reader.js'
import { clusterMembership, listedOwners, type MemberVerdict } from '../scheduler/membership.js'
import type { PublicState } from '../scheduler/state.js'
import type { Ingestor, RecordChange } from '../sync/ingest.js'

export interface FormationOptions {
  meshletDid: string
  reader: RepoReader
  state: PublicState
  ingestor: Ingestor
  logger: Logger
  /** Subscribe to the PDS of every repo we learn about (no relay needed). */
  followPdses?: boolean
}

export class ClusterFormation {
  // promises, not flags: a second caller must wait for a fetch already under way
  private fetchedOwners = new Map<string, Promise<void>>()
  private fetchedMeshlets = new Map<string, Promise<void>>()
  /** Workloads read for their served history (kept small: one entry per workload served for a stranger). */
  private fetchedWorkloads = new Map<string, Promise<void>>()
  /** Owners whose work this meshlet may rank and run; their candidates are fetched too. */
  private coveredOwners = new Map<string, Promise<void>>()
  /** After bootstrap, a newly fetched meshlet's earlier answers are read too (its PDS may be new to us). */
  private bootstrapped = false

  constructor(private readonly opts: FormationOptions) {}

  members(): MemberVerdict[] {
    return clusterMembership(this.opts.state, this.opts.meshletDid)
  }

  /**
   * Whether this meshlet takes work from `ownerDid` as far as formation knows (its own
   * owner, an owner its clusters list, or the recipient of a grant of it), and so
   * fetches and follows every meshlet that is a candidate for that owner's work through
   * a cluster. Workloads of other owners may reach the state through a shared PDS; this
   * meshlet is no candidate for them and their candidates are not guaranteed to be seen.
   */
  covers(ownerDid: string): boolean {
    return this.coveredOwners.has(ownerDid)
  }

  /** The owners covers() is true for, sorted. */
  covered(): string[] {
    return [...this.coveredOwners.keys()].sort()
  }

  async bootstrap(): Promise<MemberVerdict[]> {
    await this.fetchMeshlet(this.opts.meshletDid)
    const self = this.selfOwner()
    if (self) await this.cover(self) // reads our owner's grants of us
    const owners = new Set([...listedOwners(this.opts.state, this.opts.meshletDid).keys(), ...this.grantRecipients()])
    await Promise.all([...owners].map((o) => this.cover(o)))
    this.bootstrapped = true
    return this.members()
  }

  /** Feed firehose changes here: owners and meshlets named for the first time are fetched. */
  onChange(change: RecordChange): void {
    if (change.action !== 'put') return
    const { state, meshletDid } = this.opts
    switch (change.collection) {
      case COLLECTIONS.cluster:
        // our own clusters name the owners we take work from
        if (change.did === meshletDid) {
          for (const owner of listedOwners(state, meshletDid).keys()) this.background(this.cover(owner))
        }
        // a covered owner's meshlet names owners whose meshlets are candidates for that owner's work
        if (this.isCoveredMeshlet(change.did)) this.background(this.expand(change.did))
        break
      case COLLECTIONS.meshlet: {
        // an owner we fetched claims a meshlet: fetch it (and, for a covered owner, what it lists)
        const m = state.meshlets.get(change.uri)?.record.meshlet
        if (!m || !this.fetchedOwners.has(change.did)) break
        const covered = this.coveredOwners.has(change.did)
        this.background(this.fetchMeshlet(m).then(() => (covered ? this.expand(m) : undefined)))
        break
      }
      case COLLECTIONS.meshletOwner:
        // our own link may be (re)written: our owner is covered
        if (change.did === meshletDid) {
          const self = this.selfOwner()
          if (self) this.background(this.cover(self))
        }
        break
      case COLLECTIONS.shareGrant:
        if (change.did === this.selfOwner()) for (const r of this.grantRecipients()) this.background(this.cover(r))
        break
      case COLLECTIONS.workloadStatus: {
        // A meshlet we follow finished work for an owner we may not follow: without that
        // workload's record its replica would not count here, while a meshlet that follows
        // the owner counts it, and the two would rank by different balances (the simulation
        // found this across overlapping clusters). Read it, as startup does.
        const s = state.statuses.get(change.uri)?.record
        if (!s || !isServed(s) || state.workloads.has(s.workload.uri) || !this.fetchedMeshlets.has(change.did)) break
        this.background(this.fetchWorkload(s.workload.uri))
        break
      }
    }
  }

  private selfOwner(): string | undefined {
    return this.opts.state.meshletOwners.get(this.opts.meshletDid)?.record.owner
  }

  /** Owners our owner granted this meshlet to (paused or not: a grant may resume). */
  private grantRecipients(): string[] {
    const self = this.selfOwner()
    if (!self) return []
    const out = new Set<string>()
    for (const g of this.opts.state.grants.values()) {
      if (g.did === self && g.record.meshlet === this.opts.meshletDid) out.add(g.record.recipient)
    }
    return [...out]
  }

  /** Is this meshlet claimed by an owner we take work from? Its cluster records name candidates. */
  private isCoveredMeshlet(meshlet: string): boolean {
    return this.opts.state.claimsOf(meshlet).some((c) => this.coveredOwners.has(c.did))
  }

  /**
   * First hop: an owner we take work from — its repo, its meshlets — then the second hop:
   * every owner its meshlets list (whose meshlets may be candidates for its work).
   */
  private cover(owner: string): Promise<void> {
    return once(this.coveredOwners, owner, async () => {
      await this.fetchOwner(owner)
      const meshlets = this.opts.state.meshletsOf(owner).map((m) => m.record.meshlet)
      await Promise.all(meshlets.map((m) => this.expand(m)))
    })
  }

  /** Fetches the owners a covered owner's meshlet lists: one hop, never further. */
  private async expand(meshlet: string): Promise<void> {
    await this.fetchMeshlet(meshlet)
    const owners = [...listedOwners(this.opts.state, meshlet).keys()]
    await Promise.all(owners.map((o) => this.fetchOwner(o)))
  }

  private fetchOwner(owner: string): Promise<void> {
    return once(this.fetchedOwners, owner, () => this.loadOwner(owner))
  }

  private async loadOwner(owner: string): Promise<void> {
    await this.follow(owner)
    const meshlets = await this.load(owner, COLLECTIONS.meshlet)
    const dids = meshlets.flatMap((uri) => this.opts.state.meshlets.get(uri)?.record.meshlet ?? [])
    await Promise.all(dids.map((m) => this.fetchMeshlet(m)))
    await this.load(owner, COLLECTIONS.shareGrant)
  }

  private fetchMeshlet(meshlet: string): Promise<void> {
    return once(this.fetchedMeshlets, meshlet, () => this.loadMeshlet(meshlet))
  }

  private async loadMeshlet(meshlet: string): Promise<void> {
    await this.follow(meshlet)
    const [, , , statuses] = await Promise.all([
      this.load(meshlet, COLLECTIONS.meshletOwner),
      this.load(meshlet, COLLECTIONS.cluster),
      this.load(meshlet, COLLECTIONS.capacity),
      // every replica that held a place on it (occupancy) and the finished ones it served (fair
      // share), whoever's work they were: every meshlet then ranks by the same history
      this.load(meshlet, COLLECTIONS.workloadStatus, (r) => isServed(r as WorkloadStatusRecord) || (r as WorkloadStatusRecord).startedAt !== undefined),
    ])
    const served = statuses.filter((uri) => {
      const s = this.opts.state.statuses.get(uri)?.record
      return !!s && isServed(s)
    })
    await this.loadServedHistory(meshlet, served)
    // Found while running, possibly on a PDS we only now follow: its bids and statuses
    // for workloads we already know may predate our subscription.
    if (this.bootstrapped && meshlet !== this.opts.meshletDid) {
      await Promise.all([this.loadAnswers(meshlet, COLLECTIONS.bid), this.loadAnswers(meshlet, COLLECTIONS.workloadStatus)])
    }
  }

  /**
   * A finished replica counts toward fair share only with its workload record and the
   * meshlet's offer for it (scheduler/fairshare.ts): a meshlet that starts now must read
   * them too, or it would rank candidates by less history than one that saw them live.
   */
  private async loadServedHistory(meshlet: string, statusUris: string[]): Promise<void> {
    const state = this.opts.state
    const workloads = new Set(statusUris.flatMap((u) => state.statuses.get(u)?.record.workload.uri ?? []))
    if (workloads.size === 0) return
    for (const uri of workloads) await this.fetchWorkload(uri)
    await this.load(meshlet, COLLECTIONS.bid, (r) => workloads.has((r as BidRecord).workload.uri) && !(r as BidRecord).decline)
  }

  /** The record of a workload a followed meshlet served, once. */
  private fetchWorkload(uri: string): Promise<void> {
    // forgotten once read: the state holds the record from then on
    return onceAtATime(this.fetchedWorkloads, uri, async () => {
      if (this.opts.state.workloads.has(uri)) return
      const at = new AtUri(uri)
      const res = await this.opts.reader.get(at.host, COLLECTIONS.workload, at.rkey)
      // a deleted workload counts for no one: every view loses it with its record
      if (res.ok) this.opts.ingestor.applyRecord(COLLECTIONS.workload, { uri, cid: res.value.cid, did: at.host, rkey: at.rkey, record: res.value.record })
    })
  }

  private async follow(did: string): Promise<void> {
    if (this.opts.followPdses === false) return
    const pds = await this.opts.reader.pdsFor(did)
    if (pds) this.opts.ingestor.addSource(pds)
  }

  /** Reads a collection into the state; returns the uris loaded. Unreachable repos are logged. */
  private async load(did: string, collection: Collection, keep?: (record: unknown) => boolean): Promise<string[]> {
    try {
      const { records, invalid } = await this.opts.reader.list(did, collection)
      for (const bad of invalid) this.opts.logger.warn({ uri: bad.uri, error: bad.error }, 'invalid record skipped')
      const kept = keep ? records.filter((r) => keep(r.record)) : records
      for (const r of kept) {
        this.opts.ingestor.applyRecord(collection, { uri: r.uri, cid: r.cid, did, rkey: r.rkey, record: r.record })
      }
      return kept.map((r) => r.uri)
    } catch (err) {
      this.opts.logger.warn({ did, collection, err: (err as Error).message }, 'could not read repo')
      return []
    }
  }

  /** A meshlet's bids or statuses, only those about workloads in the state. */
  private async loadAnswers(meshlet: string, collection: typeof COLLECTIONS.bid | typeof COLLECTIONS.workloadStatus): Promise<void> {
    if (this.opts.state.workloads.size === 0) return
    await this.load(meshlet, collection, (r) => this.opts.state.workloads.has((r as { workload: { uri: string } }).workload.uri))
  }

  private background(p: Promise<unknown>): void {
    void p.catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'cluster formation fetch failed'))
  }
}

/** Like once, but only while the load runs. */
function onceAtATime(running: Map<string, Promise<void>>, key: string, load: () => Promise<void>): Promise<void> {
  return once(running, key, () => load().finally(() => running.delete(key)))
}

/** A finished replica that may count toward fair share. */
function isServed(s: WorkloadStatusRecord): boolean {
  return isFinal(s) && (s.cpuMillis ?? 0) > 0
}

/** The first caller starts the load; later callers wait for the same one. */
function once(started: Map<string, Promise<void>>, key: string, load: () => Promise<void>): Promise<void> {
  let p = started.get(key)
  if (!p) started.set(key, (p = load()))
  return p
}
