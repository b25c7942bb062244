// What @atproto/sync's authenticated commit parsing proves, with the signature checked by
// OpenSSL (src/identity/signature.ts): the commit block is signed by the repo's current
// atproto key, names the repo's DID, and its MST maps the op's path to the op's CID (or,
// for a delete, to nothing). The firehose is read with `unauthenticatedCommits`, which
// still checks every block against its CID; this module is what makes it authenticated.
//
// Ops of one commit arrive one after another, so the last commit's verdict and MST are
// kept: a commit is verified once however many scheduler records it carries.
import type { IdResolver } from '@atproto/identity'
import { encode as cborEncode } from '@atproto/lex-cbor'
import { MST, MemoryBlockstore, def, formatDataKey, readCarWithRoot, type BlockMap, type Commit } from '@atproto/repo'
import type { CommitEvt } from '@atproto/sync'
import { RESOLVE_RETRY_DELAYS_MS, isSettledResolveError, resolveRetrying } from '../identity/resolver.js'
import { verifyDidKeySignature } from '../identity/signature.js'

/** How long a resolved signing key is used before asking the resolver (and its cache) again. */
const KEY_TTL_MS = 60_000
/**
 * How long a DID whose key could not be had (no answer after retries) fails at once: one
 * account whose DID document never answers (a did:web host that hangs) must not hold up,
 * record after record, the stream it shares with everyone else.
 */
export const UNAVAILABLE_TTL_MS = 30_000

/** A commit's verdict: its MST when it is signed by the repo, nothing when it is not. */
type CheckedCommit = { mst?: MST }

export class CommitProver {
  private readonly keys = new Map<string, { didKey: string; at: number }>()
  private readonly unavailable = new Map<string, { why: string; at: number }>()
  private last?: { cid: string; checked: Promise<CheckedCommit> }

  private readonly retryDelaysMs: readonly number[]
  private readonly unavailableTtlMs: number

  constructor(
    private readonly idResolver: IdResolver,
    opts: { retryDelaysMs?: readonly number[]; unavailableTtlMs?: number } = {},
  ) {
    this.retryDelaysMs = opts.retryDelaysMs ?? RESOLVE_RETRY_DELAYS_MS
    this.unavailableTtlMs = opts.unavailableTtlMs ?? UNAVAILABLE_TTL_MS
  }

  /** Why the repo's signing key could not be had lately, if it could not (its records are unproven for that). */
  keyUnavailable(did: string): string | undefined {
    const u = this.unavailable.get(did)
    return u && Date.now() - u.at < this.unavailableTtlMs ? u.why : undefined
  }

  /** Whether the op is proven by its commit; never throws (a malformed commit proves nothing). */
  async proves(evt: CommitEvt): Promise<boolean> {
    const cid = evt.commit.toString()
    if (this.last?.cid !== cid) this.last = { cid, checked: this.check(evt.did, evt.commit, evt.blocks).catch(() => ({})) }
    const { mst } = await this.last.checked
    if (!mst) return false
    try {
      const found = await mst.get(formatDataKey(evt.collection, evt.rkey))
      return evt.event === 'delete' ? found === null : found !== null && found.equals(evt.cid)
    } catch {
      return false
    }
  }

  /**
   * A record as the repo's signed proof of it shows it (the CAR of `com.atproto.sync.getRecord`):
   * its CID and value, null when the proof shows no such record, undefined when nothing is proven.
   */
  async provenRecord(did: string, car: Uint8Array, collection: string, rkey: string): Promise<{ cid: string; record: unknown } | null | undefined> {
    try {
      const { root, blocks } = await readCarWithRoot(car)
      const { mst } = await this.check(did, root, blocks)
      if (!mst) return undefined
      const cid = await mst.get(formatDataKey(collection, rkey))
      if (!cid) return null
      return { cid: cid.toString(), record: await new MemoryBlockstore(blocks).readRecord(cid) }
    } catch {
      return undefined
    }
  }

  private async check(did: string, root: CommitEvt['commit'], blocks: BlockMap): Promise<CheckedCommit> {
    const store = new MemoryBlockstore(blocks)
    const commit = await store.readObj(root, def.commit)
    if (commit.did !== did) return {}
    const signed = (await this.signedBy(commit, await this.key(did, false))) || (await this.signedBy(commit, await this.key(did, true)))
    return signed ? { mst: MST.load(store, commit.data) } : {}
  }

  private async signedBy(commit: Commit, didKey: string): Promise<boolean> {
    const { sig, ...unsigned } = commit
    return verifyDidKeySignature(didKey, cborEncode(unsigned), sig)
  }

  /** The repo's signing key; `refresh` re-resolves (a key rotation shows up as a failed check first). */
  private async key(did: string, refresh: boolean): Promise<string> {
    const cached = this.keys.get(did)
    if (!refresh && cached && Date.now() - cached.at < KEY_TTL_MS) return cached.didKey
    const failing = this.keyUnavailable(did)
    if (failing) throw new Error(failing)
    try {
      // a loaded machine or a busy directory costs time here, not the record
      const didKey = await resolveRetrying(() => this.idResolver.did.resolveAtprotoKey(did, refresh), this.retryDelaysMs)
      this.keys.set(did, { didKey, at: Date.now() })
      this.unavailable.delete(did)
      return didKey
    } catch (err) {
      if (!isSettledResolveError(err)) this.markUnavailable(did, (err as Error).message)
      throw err
    }
  }

  private markUnavailable(did: string, why: string): void {
    const now = Date.now()
    // one entry per DID that failed lately: a relay's worth of failing DIDs must not pile up
    if (this.unavailable.size >= 10_000) {
      for (const [d, u] of this.unavailable) if (now - u.at >= this.unavailableTtlMs) this.unavailable.delete(d)
    }
    this.unavailable.set(did, { why, at: now })
  }
}
