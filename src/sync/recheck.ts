// Records skipped because their repo's signing key could not be resolved (the DID directory
// gave no answer, even after asking again) are read again once the key can be had: from
// the repo's PDS, with the repo's signed proof (`com.atproto.sync.getRecord`), checked
// as a firehose commit is. A directory down for a while then costs time, not the record.
import type { Logger } from 'pino'
import type { Collection } from '../records/index.js'
import type { RepoReader } from '../repo/reader.js'
import type { CommitProver } from './commit-proof.js'

/** How many skipped records wait at most; beyond it the oldest is given up, logged. */
const MAX_PENDING = 10_000

interface Skipped {
  collection: Collection
  did: string
  rkey: string
}

export interface RecheckOptions {
  prover: CommitProver
  reader: RepoReader
  logger: Logger
  /** How long after a skip the first reading is tried (the prover fails fast for a key it could not have). */
  delayMs: number
  /** The record as its repo holds it now: a value proven by the repo's signed commit, or null when its PDS has none. */
  apply: (skipped: Skipped & { uri: string }, found: { cid: string; record: unknown } | null) => void
}

export class Recheck {
  private readonly pending = new Map<string, Skipped>()
  private timer?: NodeJS.Timeout
  private running = false
  private closed = false

  constructor(private readonly o: RecheckOptions) {}

  add(uri: string, skipped: Skipped): void {
    this.pending.delete(uri)
    this.pending.set(uri, skipped)
    if (this.pending.size > MAX_PENDING) {
      const [oldest] = this.pending.keys()
      this.pending.delete(oldest)
      this.o.logger.warn({ uri: oldest }, 'too many records wait for their signing key: the oldest is given up')
    }
    this.schedule()
  }

  /** The firehose delivered a later, proven op of this record: what it says stands. */
  superseded(uri: string): void {
    this.pending.delete(uri)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private schedule(): void {
    if (this.timer || this.running || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.run()
    }, this.o.delayMs)
    this.timer.unref()
  }

  private async run(): Promise<void> {
    this.running = true
    try {
      for (const [uri, s] of [...this.pending]) {
        if (this.closed) return
        if (this.o.prover.keyUnavailable(s.did)) continue
        const car = await this.o.reader.recordProof(s.did, s.collection, s.rkey).catch(() => undefined)
        if (car === undefined) continue
        const found = car === null ? null : await this.o.prover.provenRecord(s.did, car, s.collection, s.rkey)
        if (found === undefined) {
          if (this.o.prover.keyUnavailable(s.did)) continue
          this.o.logger.warn({ uri }, 'record read again is not proven by its repo: given up')
        } else if (this.pending.get(uri) === s) {
          this.o.apply({ uri, ...s }, found)
        }
        if (this.pending.get(uri) === s) this.pending.delete(uri)
      }
    } finally {
      this.running = false
      if (this.pending.size) this.schedule()
    }
  }
}
