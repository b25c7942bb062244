// Cluster formation, following the seed's startup process: read our cluster records,
// resolve each member owner to their meshlet(s) from their own repo, read those
// meshlets' links and cluster records, and keep only the mutually verified. The records
// land in the shared PublicState; membership itself is the pure clusterMembership().
// After startup the firehose keeps it current; a newly named owner is fetched on sight.
import type { Logger } from 'pino'
import { COLLECTIONS, type Collection } from '../records/index.js'
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

  constructor(private readonly opts: FormationOptions) {}

  members(): MemberVerdict[] {
    return clusterMembership(this.opts.state, this.opts.meshletDid)
  }

  async bootstrap(): Promise<MemberVerdict[]> {
    await this.fetchMeshlet(this.opts.meshletDid)
    const self = this.opts.state.meshletOwners.get(this.opts.meshletDid)?.record.owner
    const owners = new Set(listedOwners(this.opts.state, this.opts.meshletDid).keys())
    if (self) owners.add(self)
    await Promise.all([...owners].map((o) => this.fetchOwner(o)))
    return this.members()
  }

  /** Feed firehose changes here: an owner named for the first time is fetched. */
  onChange(change: RecordChange): void {
    if (change.action !== 'put') return
    if (change.collection === COLLECTIONS.cluster && change.did === this.opts.meshletDid) {
      for (const owner of listedOwners(this.opts.state, this.opts.meshletDid).keys()) {
        if (!this.fetchedOwners.has(owner)) void this.fetchOwner(owner).catch(() => undefined)
      }
    }
    if (change.collection === COLLECTIONS.meshlet) {
      const m = this.opts.state.meshlets.get(change.uri)?.record.meshlet
      if (m && this.fetchedOwners.has(change.did) && !this.fetchedMeshlets.has(m)) {
        void this.fetchMeshlet(m).catch(() => undefined)
      }
    }
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
    await Promise.all([
      this.load(meshlet, COLLECTIONS.meshletOwner),
      this.load(meshlet, COLLECTIONS.cluster),
      this.load(meshlet, COLLECTIONS.capacity),
    ])
  }

  private async follow(did: string): Promise<void> {
    if (this.opts.followPdses === false) return
    const pds = await this.opts.reader.pdsFor(did)
    if (pds) this.opts.ingestor.addSource(pds)
  }

  /** Reads a collection into the state; returns the uris loaded. Unreachable repos are logged. */
  private async load(did: string, collection: Collection): Promise<string[]> {
    try {
      const { records, invalid } = await this.opts.reader.list(did, collection)
      for (const bad of invalid) this.opts.logger.warn({ uri: bad.uri, error: bad.error }, 'invalid record skipped')
      for (const r of records) {
        this.opts.ingestor.applyRecord(collection, { uri: r.uri, cid: r.cid, did, rkey: r.rkey, record: r.record })
      }
      return records.map((r) => r.uri)
    } catch (err) {
      this.opts.logger.warn({ did, collection, err: (err as Error).message }, 'could not read repo')
      return []
    }
  }
}

/** The first caller starts the load; later callers wait for the same one. */
function once(started: Map<string, Promise<void>>, key: string, load: () => Promise<void>): Promise<void> {
  let p = started.get(key)
  if (!p) started.set(key, (p = load()))
  return p
}
