// An owner's view of the commune, against the owner's own PDS and the meshlets' XRPC.
import { AtpAgent } from '@atproto/api'
import { TID } from '@atproto/common-web'
import { AtUri } from '@atproto/syntax'
import { ClusterFormation } from '../cluster/formation.js'
import { LocalDb } from '../db/index.js'
import { createIdResolver } from '../identity/resolver.js'
import { COLLECTIONS, type SealedSecret, type WorkloadRecord, type WorkloadStatusRecord } from '../records/index.js'
import { RepoReader } from '../repo/reader.js'
import { RepoWriter } from '../repo/writer.js'
import { statusRecordKey } from '../scheduler/hash.js'
import { clusterMembership, verifiedMeshlets, type MemberVerdict } from '../scheduler/membership.js'
import { place, rankCandidates, type Placement } from '../scheduler/placement.js'
import { PublicState, type Stored } from '../scheduler/state.js'
import { Ingestor } from '../sync/ingest.js'
import { silentLogger } from '../util/logger.js'
import { seal, secretBinding } from '../util/x25519.js'
import { MeshletClient } from '../xrpc/client.js'
import type { ParsedSpec } from './spec.js'
import { CliError } from './errors.js'

export { CliError }

export interface OwnerLogin {
  pds: string
  identifier: string
  password: string
  plcUrl: string
  allowInsecureHttp?: boolean
}

export interface ReplicaStatus {
  meshlet: string
  replica: number
  state: string
  exitCode?: number
  cpuMillis?: number
  memoryPeakBytes?: number
  message?: string
  placed?: number
  updatedAt: string
}

/** A workload's placement as the meshlets compute it, with its replicas' status records. */
export interface WorkloadPlacement {
  uri: string
  record: WorkloadRecord
  placement: Placement
  replicas: ReplicaStatus[]
  /** Meshlets whose records could not be read: the placement lacks their bids and statuses. */
  unreadable: { meshlet: string; detail: string }[]
}

export class OwnerSession {
  private constructor(
    readonly writer: RepoWriter,
    readonly reader: RepoReader,
    readonly client: MeshletClient,
  ) {}

  get did(): string {
    return this.writer.did
  }

  static async login(l: OwnerLogin): Promise<OwnerSession> {
    const agent = new AtpAgent({ service: l.pds })
    try {
      await agent.login({ identifier: l.identifier, password: l.password })
    } catch (err) {
      const e = err as { status?: number; error?: string; message: string }
      if (e.status === 401 || e.error === 'AuthenticationRequired') throw new CliError(`wrong handle or password for ${l.identifier} on ${l.pds}`)
      throw new CliError(`cannot reach the PDS at ${l.pds}: ${e.message}`)
    }
    const reader = new RepoReader(createIdResolver({ plcUrl: l.plcUrl, allowInsecureHttp: l.allowInsecureHttp }))
    return new OwnerSession(new RepoWriter(agent, agent.session!.did), reader, new MeshletClient(agent, reader))
  }

  /** Public records around this owner: own meshlets, their clusters, members' meshlets. */
  async view(): Promise<{ state: PublicState; meshlets: string[] }> {
    const state = new PublicState()
    const db = new LocalDb(':memory:')
    const logger = silentLogger()
    const ingestor = new Ingestor({ idResolver: this.reader.idResolver, db, state, logger })
    const { records } = await this.reader.list(this.did, COLLECTIONS.meshlet)
    const mine = records.map((r) => r.record.meshlet)
    for (const m of mine) {
      await new ClusterFormation({ meshletDid: m, reader: this.reader, state, ingestor, logger, followPdses: false }).bootstrap()
    }
    await ingestor.close()
    db.close()
    return { state, meshlets: verifiedMeshlets(state, this.did) }
  }

  async cluster(): Promise<{ meshlet: string; members: MemberVerdict[] }[]> {
    const { state, meshlets } = await this.view()
    if (meshlets.length === 0) throw new CliError(`${this.did} has no meshlet whose link verifies both ways (run meshlet init)`)
    return meshlets.map((m) => ({ meshlet: m, members: clusterMembership(state, m) }))
  }

  async submit(spec: ParsedSpec): Promise<{ uri: string; cid: string }> {
    const record: WorkloadRecord = { ...spec.record }
    // the record key is chosen before sealing: every sealed value is bound to it
    const rkey = TID.nextStr()
    const names = Object.keys(spec.secrets)
    if (names.length) {
      const { state } = await this.view()
      record.secrets = sealSecrets(state, this.did, rkey, record, spec.secrets)
    }
    // stamped immediately before the write: the moment the record exists is what rounds and fair share read
    record.createdAt = new Date().toISOString()
    const res = await this.writer.create(COLLECTIONS.workload, record, rkey)
    return { uri: res.uri, cid: res.cid ?? '' }
  }

  async workload(uri: string): Promise<WorkloadRecord> {
    return (await this.storedWorkload(uri)).record
  }

  private async storedWorkload(uri: string): Promise<Stored<WorkloadRecord>> {
    const at = parseWorkloadUri(uri)
    if (at.host !== this.did) throw new CliError(`${uri} is not one of your workloads (it lives in ${at.host})`)
    const res = await this.reader.get(this.did, COLLECTIONS.workload, at.rkey)
    if (!res.ok) throw new CliError(res.reason === 'missing' ? `unknown workload: ${uri}` : res.detail)
    return { uri: res.value.uri, cid: res.value.cid, did: this.did, rkey: res.value.rkey, record: res.value.record }
  }

  /**
   * Where a workload stands, computed here with the same pure place() the meshlets run,
   * from public records only: the view's links, clusters and capacities, the workload,
   * and the bids and status records in every known meshlet's repo.
   */
  async placement(uri: string, known?: { state: PublicState }): Promise<WorkloadPlacement> {
    const workload = await this.storedWorkload(uri)
    const { state } = known ?? (await this.view())
    return (await this.placeAll(state, [workload]))[0]
  }

  /** Placements of all this owner's workloads, from one view and one read of each meshlet's bids and statuses. */
  async placements(known?: { state: PublicState }): Promise<WorkloadPlacement[]> {
    const [{ state }, { records }] = await Promise.all([known ?? this.view(), this.reader.list(this.did, COLLECTIONS.workload)])
    return this.placeAll(
      state,
      records.map((r) => ({ uri: r.uri, cid: r.cid, did: this.did, rkey: r.rkey, record: r.record })),
    )
  }

  private async placeAll(state: PublicState, workloads: Stored<WorkloadRecord>[]): Promise<WorkloadPlacement[]> {
    const uris = new Set(workloads.map((w) => w.uri))
    for (const w of workloads) state.put(COLLECTIONS.workload, w)
    const meshlets = knownMeshlets(state)
    const unreadable: WorkloadPlacement['unreadable'] = []
    const read = async <C extends typeof COLLECTIONS.bid | typeof COLLECTIONS.workloadStatus>(m: string, collection: C) => {
      try {
        return (await this.reader.list(m, collection)).records.map((r) => ({ uri: r.uri, cid: r.cid, did: m, rkey: r.rkey, record: r.record }))
      } catch (err) {
        unreadable.push({ meshlet: m, detail: `${collection}: ${(err as Error).message.split('\n')[0]}` })
        return []
      }
    }
    const replicas = new Map<string, ReplicaStatus[]>([...uris].map((u) => [u, []]))
    await Promise.all(
      meshlets.map(async (m) => {
        const [bids, statuses] = await Promise.all([read(m, COLLECTIONS.bid), read(m, COLLECTIONS.workloadStatus)])
        for (const b of bids) if (uris.has(b.record.workload.uri)) state.put(COLLECTIONS.bid, b)
        // every finished status counts for fair share (the ranking), as it does on the meshlets
        for (const s of statuses) {
          state.put(COLLECTIONS.workloadStatus, s)
          replicas.get(s.record.workload.uri)?.push(toReplicaStatus(m, s.record))
        }
      }),
    )
    const now = Date.now()
    unreadable.sort((a, b) => cmp(a.meshlet, b.meshlet) || cmp(a.detail, b.detail))
    return workloads.map((w) => ({
      uri: w.uri,
      record: w.record,
      placement: place(state, w.uri, now)!,
      replicas: replicas.get(w.uri)!.sort((a, b) => cmp(a.meshlet, b.meshlet) || a.replica - b.replica),
      unreadable,
    }))
  }

  async workloads(): Promise<{ uri: string; record: WorkloadRecord }[]> {
    const { records } = await this.reader.list(this.did, COLLECTIONS.workload)
    return records.map((r) => ({ uri: r.uri, record: r.record }))
  }

  /** Status records of a workload's replicas, read publicly from every meshlet in reach. */
  async statuses(uri: string, known?: { state: PublicState }): Promise<ReplicaStatus[]> {
    const w = await this.workload(uri)
    const { state } = known ?? (await this.view())
    const meshlets = [...state.capacities.keys()].sort()
    const out: ReplicaStatus[] = []
    await Promise.all(
      meshlets.map(async (m) => {
        for (let i = 0; i < (w.allowPacking ? w.replicas : 1); i++) {
          const res = await this.reader.get(m, COLLECTIONS.workloadStatus, statusRecordKey(uri, i))
          if (!res.ok) break
          out.push(toReplicaStatus(m, res.value.record))
        }
      }),
    )
    return out.sort((a, b) => (a.meshlet < b.meshlet ? -1 : a.meshlet > b.meshlet ? 1 : a.replica - b.replica))
  }

  async delete(uri: string): Promise<void> {
    await this.workload(uri)
    await this.writer.delete(COLLECTIONS.workload, parseWorkloadUri(uri).rkey)
  }
}

/**
 * Seals each secret to every meshlet that could be asked to run the workload, and to no
 * other: the candidates of the very ranking the meshlets compute (mutually verified
 * members, or meshlets lent by a grant, fresh and feasible), never a mere neighbour of a
 * neighbour that happens to publish a key. Each value is bound to the owner, the record
 * key, its name and the meshlet, so it opens only in this workload on that meshlet.
 */
export function sealSecrets(state: PublicState, owner: string, rkey: string, record: WorkloadRecord, secrets: Record<string, string>): SealedSecret[] {
  const uri = `at://${owner}/${COLLECTIONS.workload}/${rkey}`
  const draft = { uri, cid: '', did: owner, rkey, record: { ...record, createdAt: new Date().toISOString() } }
  const candidates = new Set(rankCandidates(state, draft).candidates.map((c) => c.did))
  const keys = [...state.capacities.values()].filter((c) => c.record.encryptionKey && candidates.has(c.did)).sort((a, b) => cmp(a.did, b.did))
  if (keys.length === 0) throw new CliError('no meshlet that could run this workload publishes an encryption key; cannot seal secrets')
  const names = Object.keys(secrets).sort()
  if (keys.length * names.length > MAX_SEALED) {
    throw new CliError(`${names.length} secret(s) for ${keys.length} meshlet(s) make ${keys.length * names.length} sealed values; a workload holds at most ${MAX_SEALED}`)
  }
  return keys.flatMap((c) =>
    names.map((name) => {
      let ciphertext: string
      try {
        ciphertext = seal(c.record.encryptionKey!, secrets[name], secretBinding(uri, name, c.did))
      } catch (err) {
        throw new CliError(`cannot seal ${name} to ${c.did}: ${(err as Error).message}`)
      }
      if (ciphertext.length > MAX_CIPHERTEXT) throw new CliError(`secret ${name} is too long to seal (at most about ${Math.floor((MAX_CIPHERTEXT * 3) / 4) - 60} bytes)`)
      return { name, meshlet: c.did, ciphertext }
    }),
  )
}

/** The lexicon's limits (commune.scheduler.workload#secrets, defs#sealedSecret.ciphertext). */
const MAX_SEALED = 512
const MAX_CIPHERTEXT = 16384

export function parseWorkloadUri(uri: string): AtUri {
  let at: AtUri
  try {
    at = new AtUri(uri)
  } catch {
    throw new CliError(`not an at:// uri: ${uri}`)
  }
  if (at.collection !== COLLECTIONS.workload || !at.rkey) throw new CliError(`not a workload uri: ${uri}`)
  return at
}

/** Every meshlet the view knows of: capacity records, links, and owners' claims. */
function knownMeshlets(state: PublicState): string[] {
  const dids = new Set<string>([...state.capacities.keys(), ...state.meshletOwners.keys()])
  for (const m of state.meshlets.values()) dids.add(m.record.meshlet)
  return [...dids].sort()
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function toReplicaStatus(meshlet: string, r: WorkloadStatusRecord): ReplicaStatus {
  return {
    meshlet,
    replica: r.replica,
    state: r.state,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.cpuMillis !== undefined ? { cpuMillis: r.cpuMillis } : {}),
    ...(r.memoryPeakBytes !== undefined ? { memoryPeakBytes: r.memoryPeakBytes } : {}),
    ...(r.message ? { message: r.message } : {}),
    ...(r.placed !== undefined ? { placed: r.placed } : {}),
    updatedAt: r.updatedAt,
  }
}
