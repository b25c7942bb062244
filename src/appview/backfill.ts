// A repo's current commune.scheduler.* records, read whole with com.atproto.sync.getRepo
// and verified with @atproto/repo: the commit is signed by the DID's current key and
// every record is in the signed tree (the same trust the firehose gives a commit).
import type { IdResolver } from '@atproto/identity'
import { cborToLexRecord, readCarWithRoot, RepoVerificationError, verifyRepo } from '@atproto/repo'
import { isSchedulerCollection, type Collection } from '../records/index.js'

export interface SnapshotRecord {
  collection: Collection
  rkey: string
  cid: string
  /** Not yet lexicon-validated. */
  record: unknown
}

export interface RepoSnapshot {
  did: string
  /** The signed commit's rev: every firehose event at or before it is in this snapshot. */
  rev: string
  records: SnapshotRecord[]
  /** Size of the CAR file read. */
  bytes: number
}

export class BackfillError extends Error {}

/** Reads and verifies one repo from its PDS. Throws BackfillError with one line on any failure. */
export async function fetchRepo(idResolver: IdResolver, pds: string, did: string, opts: { timeoutMs?: number } = {}): Promise<RepoSnapshot> {
  const url = new URL('/xrpc/com.atproto.sync.getRepo', pds)
  url.searchParams.set('did', did)
  let bytes: Uint8Array
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000) })
    if (!res.ok) throw new BackfillError(`getRepo ${did} on ${pds}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`)
    bytes = new Uint8Array(await res.arrayBuffer())
  } catch (err) {
    if (err instanceof BackfillError) throw err
    throw new BackfillError(`getRepo ${did} on ${pds}: ${(err as Error).message}`)
  }
  const car = await readCarWithRoot(bytes).catch((err: Error) => {
    throw new BackfillError(`getRepo ${did}: not a CAR file: ${err.message}`)
  })
  let verified
  try {
    verified = await verifyRepo(car.blocks, car.root, did, await idResolver.did.resolveAtprotoKey(did))
  } catch (err) {
    if (!(err instanceof RepoVerificationError)) throw new BackfillError(`getRepo ${did}: ${(err as Error).message}`)
    // the key may have rotated since it was cached: once more with a fresh DID document
    try {
      verified = await verifyRepo(car.blocks, car.root, did, await idResolver.did.resolveAtprotoKey(did, true))
    } catch (again) {
      throw new BackfillError(`getRepo ${did}: does not verify: ${(again as Error).message}`)
    }
  }
  const records: SnapshotRecord[] = []
  for (const c of verified.creates) {
    if (!isSchedulerCollection(c.collection)) continue
    const block = car.blocks.get(c.cid)
    if (!block) continue
    records.push({ collection: c.collection, rkey: c.rkey, cid: c.cid.toString(), record: cborToLexRecord(block) })
  }
  return { did, rev: verified.commit.rev, records, bytes: bytes.length }
}

/** The rev of a repo's latest commit (unverified: only a hint that a snapshot is out of date). */
export async function latestRev(pds: string, did: string): Promise<string | undefined> {
  const url = new URL('/xrpc/com.atproto.sync.getLatestCommit', pds)
  url.searchParams.set('did', did)
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(15_000) })
    if (!res.ok) return undefined
    const body = (await res.json()) as { rev?: unknown }
    return typeof body.rev === 'string' ? body.rev : undefined
  } catch {
    return undefined
  }
}
