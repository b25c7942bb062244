// Writes this account's own records. Every record is validated against its lexicon
// first (the PDS does not know our lexicons), and every op is counted: writes cost
// rate-limit points on a hosted PDS, so the placement protocol keeps them low.
import { AtpAgent } from '@atproto/api'
import { TID } from '@atproto/common-web'
import { assertValidRecord, type Collection, type RecordTypes } from '../records/index.js'
import { WRITE_POINTS } from './budget.js'

export type Write =
  | { op: 'create'; collection: Collection; rkey?: string; record: RecordTypes[Collection] }
  | { op: 'put'; collection: Collection; rkey: string; record: RecordTypes[Collection] }
  | { op: 'delete'; collection: Collection; rkey: string }

export interface WriteResult {
  uri: string
  cid?: string
}

export class RepoWriter {
  /** Repo ops written (each create/put/delete counts one, whether batched or not). */
  ops = 0
  /** Commits made (an applyWrites batch is one commit). */
  commits = 0
  /** Write points a batch cost (budget.ts), once the PDS took it. */
  onPoints?: (points: number) => void

  constructor(
    readonly agent: AtpAgent,
    readonly did: string,
  ) {}

  static async login(service: string, identifier: string, password: string): Promise<RepoWriter> {
    const agent = new AtpAgent({ service })
    const res = await agent.login({ identifier, password })
    return new RepoWriter(agent, res.data.did)
  }

  async create<C extends Collection>(collection: C, record: RecordTypes[C], rkey?: string): Promise<WriteResult> {
    const [res] = await this.applyWrites([{ op: 'create', collection, record, rkey }])
    return res
  }

  async put<C extends Collection>(collection: C, rkey: string, record: RecordTypes[C]): Promise<WriteResult> {
    const [res] = await this.applyWrites([{ op: 'put', collection, rkey, record }])
    return res
  }

  async delete(collection: Collection, rkey: string): Promise<void> {
    await this.applyWrites([{ op: 'delete', collection, rkey }])
  }

  /**
   * One commit for all of them; results are in the order of `writes`. applyWrites has no
   * upsert, so a `put` becomes an update when this writer knows the record exists and a
   * create otherwise; if the PDS refuses the batch on that guess, the writes are retried
   * one by one with putRecord, which does upsert.
   */
  async applyWrites(writes: Write[]): Promise<WriteResult[]> {
    if (writes.length === 0) return []
    const ops = writes.map((w) => {
      const rkey = w.op === 'create' ? (w.rkey ?? TID.nextStr()) : w.rkey
      if (w.op === 'delete') {
        return { $type: 'com.atproto.repo.applyWrites#delete' as const, collection: w.collection, rkey }
      }
      const value = assertValidRecord(w.collection, { ...w.record, $type: w.collection })
      const update = w.op === 'put' && this.existing.has(`${w.collection}/${rkey}`)
      return {
        $type: update ? ('com.atproto.repo.applyWrites#update' as const) : ('com.atproto.repo.applyWrites#create' as const),
        collection: w.collection,
        rkey,
        value,
      }
    })
    let results: WriteResult[]
    try {
      const res = await this.agent.com.atproto.repo.applyWrites({ repo: this.did, writes: ops, validate: false })
      this.commits++
      results = ops.map((op, i) => {
        const r = res.data.results?.[i] as { uri?: string; cid?: string } | undefined
        return { uri: r?.uri ?? `at://${this.did}/${op.collection}/${op.rkey}`, cid: r?.cid }
      })
    } catch (err) {
      // only a wrong create-or-update guess is worth a second try; an outage or a rate
      // limit would just be paid twice
      if (!writes.some((w) => w.op === 'put') || !isWrongGuess(err)) throw err
      results = []
      for (const op of ops) results.push(await this.writeOne(op))
    }
    this.ops += writes.length
    this.onPoints?.(ops.reduce((n, op) => n + WRITE_POINTS[op.$type === 'com.atproto.repo.applyWrites#delete' ? 'delete' : op.$type === 'com.atproto.repo.applyWrites#update' ? 'update' : 'create'], 0))
    for (const op of ops) {
      const key = `${op.collection}/${op.rkey}`
      if (op.$type === 'com.atproto.repo.applyWrites#delete') this.existing.delete(key)
      else this.existing.add(key)
    }
    return results
  }

  /** Tells the writer a record already exists (e.g. found at startup), so a put updates it. */
  markExisting(collection: Collection, rkey: string): void {
    this.existing.add(`${collection}/${rkey}`)
  }

  private existing = new Set<string>()

  private async writeOne(op: {
    $type: string
    collection: string
    rkey: string
    value?: Record<string, unknown>
  }): Promise<WriteResult> {
    const repo = this.did
    this.commits++
    if (op.$type === 'com.atproto.repo.applyWrites#delete') {
      await this.agent.com.atproto.repo.deleteRecord({ repo, collection: op.collection, rkey: op.rkey })
      return { uri: `at://${repo}/${op.collection}/${op.rkey}` }
    }
    const res = await this.agent.com.atproto.repo.putRecord({
      repo,
      collection: op.collection,
      rkey: op.rkey,
      record: op.value ?? {},
      validate: false,
    })
    return { uri: res.data.uri, cid: res.data.cid }
  }
}

/**
 * The PDS may have refused the batch for a wrong guess: a create of an existing record or
 * an update of a missing one, which its repo tree reports as a bare 500. A rate limit, a
 * gateway error or a dropped connection is not retried here (the outbox retries later).
 */
function isWrongGuess(err: unknown): boolean {
  const status = (err as { status?: number }).status
  return status === 400 || status === 500
}
