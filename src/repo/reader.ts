// Reads public records from the PDS that a DID's own document names, never from
// whichever PDS the caller happens to be logged in to.
import { AtpAgent } from '@atproto/api'
import type { IdResolver } from '@atproto/identity'
import { RESOLVE_RETRY_DELAYS_MS, resolveRetrying } from '../identity/resolver.js'
import { validateRecord, type Collection, type RecordTypes } from '../records/index.js'

export interface ReadRecord<C extends Collection> {
  uri: string
  cid: string
  rkey: string
  record: RecordTypes[C]
}

export type ReadResult<C extends Collection> =
  | { ok: true; value: ReadRecord<C> }
  | { ok: false; reason: 'unresolvable' | 'missing' | 'invalid' | 'unreachable'; detail: string }

export class RepoReader {
  private agents = new Map<string, AtpAgent>()

  constructor(
    readonly idResolver: IdResolver,
    private readonly retryDelaysMs: readonly number[] = RESOLVE_RETRY_DELAYS_MS,
  ) {}

  async pdsFor(did: string): Promise<string | undefined> {
    return (await this.resolvePds(did)).pds
  }

  /** The DID's PDS, or why there is none; a directory slow to answer is asked again first. */
  private async resolvePds(did: string): Promise<{ pds?: string; why?: string }> {
    try {
      return { pds: (await resolveRetrying(() => this.idResolver.did.resolveAtprotoData(did), this.retryDelaysMs)).pds }
    } catch (err) {
      return { why: (err as Error).message }
    }
  }

  private async requirePds(did: string): Promise<string> {
    const { pds, why } = await this.resolvePds(did)
    if (!pds) throw new Error(`cannot resolve ${did} to a PDS: ${why}`)
    return pds
  }

  private agentFor(pds: string): AtpAgent {
    let agent = this.agents.get(pds)
    if (!agent) {
      agent = new AtpAgent({ service: pds })
      this.agents.set(pds, agent)
    }
    return agent
  }

  async get<C extends Collection>(did: string, collection: C, rkey: string): Promise<ReadResult<C>> {
    const { pds, why } = await this.resolvePds(did)
    if (!pds) return { ok: false, reason: 'unresolvable', detail: `cannot resolve ${did} to a PDS: ${why}` }
    let res
    try {
      res = await this.agentFor(pds).com.atproto.repo.getRecord({ repo: did, collection, rkey })
    } catch (err) {
      const name = (err as { error?: string }).error
      if (name === 'RecordNotFound' || name === 'RepoNotFound' || (err as { status?: number }).status === 400) {
        return { ok: false, reason: 'missing', detail: `no ${collection}/${rkey} in ${did}` }
      }
      return { ok: false, reason: 'unreachable', detail: `${pds}: ${(err as Error).message}` }
    }
    const valid = validateRecord(collection, res.data.value)
    if (!valid.ok) return { ok: false, reason: 'invalid', detail: `${res.data.uri}: ${valid.error}` }
    return { ok: true, value: { uri: res.data.uri, cid: res.data.cid ?? '', rkey, record: valid.record } }
  }

  /**
   * The repo's signed proof of one record (a CAR: commit, MST path, record), null when the
   * PDS says there is no such record; throws when the DID or its PDS does not answer.
   */
  async recordProof(did: string, collection: string, rkey: string): Promise<Uint8Array | null> {
    const pds = await this.requirePds(did)
    try {
      return (await this.agentFor(pds).com.atproto.sync.getRecord({ did, collection, rkey })).data
    } catch (err) {
      if ((err as { error?: string }).error === 'RecordNotFound') return null
      throw err
    }
  }

  /** All valid records of a collection; invalid ones are returned separately, not thrown. */
  async list<C extends Collection>(
    did: string,
    collection: C,
  ): Promise<{ records: ReadRecord<C>[]; invalid: { uri: string; error: string }[] }> {
    const pds = await this.requirePds(did)
    const records: ReadRecord<C>[] = []
    const invalid: { uri: string; error: string }[] = []
    let cursor: string | undefined
    do {
      const res = await this.agentFor(pds).com.atproto.repo.listRecords({ repo: did, collection, limit: 100, cursor })
      for (const r of res.data.records) {
        const valid = validateRecord(collection, r.value)
        const rkey = r.uri.split('/').pop() ?? ''
        if (valid.ok) records.push({ uri: r.uri, cid: r.cid, rkey, record: valid.record })
        else invalid.push({ uri: r.uri, error: valid.error })
      }
      cursor = res.data.records.length === 100 ? res.data.cursor : undefined
    } while (cursor)
    return { records, invalid }
  }
}
