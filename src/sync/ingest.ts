// Firehose ingestion: every op proven by its signed commit against the repo's DID key
// (commit-proof.ts: what @atproto/sync's authenticated mode checks, signatures by
// OpenSSL), filtered to commune.scheduler.*, every record lexicon-validated before it is
// believed, the cursor persisted with the record so a restart resumes exactly.
//
// Persistence is write-behind: records and the cursor that delivered them are written
// together in one transaction per batch (at most BATCH_ROWS events or BATCH_MS old), not
// one transaction per event, which was 7 % of a busy meshlet's CPU. A crash loses at most
// the unwritten batch, and the cursor replays it.
//
// Backpressure: events are handled one at a time per source (no MemoryRunner, whose
// concurrency is unbounded), and the handler only indexes; slower work is signalled
// through `onChange`, which callers coalesce. A disconnect (including ConsumerTooSlow)
// reconnects from the persisted cursor; handlers are idempotent because replays happen.
import { Firehose, type Event } from '@atproto/sync'
import type { IdResolver } from '@atproto/identity'
import type { Logger } from 'pino'
import type { LocalDb } from '../db/index.js'
import { isSchedulerCollection, validateRecord, type Collection } from '../records/index.js'
import type { PublicState, Stored } from '../scheduler/state.js'
import { RESOLVE_RETRY_DELAYS_MS } from '../identity/resolver.js'
import { RepoReader } from '../repo/reader.js'
import { CommitProver, UNAVAILABLE_TTL_MS } from './commit-proof.js'
import { Recheck } from './recheck.js'

export interface RecordChange {
  collection: Collection
  uri: string
  did: string
  rkey: string
  action: 'put' | 'delete'
  /** Commit time of the firehose event (when known): latency measurement only. */
  seenAt: number
}

export interface IngestOptions {
  idResolver: IdResolver
  db: LocalDb
  state: PublicState
  logger: Logger
  onChange?: (change: RecordChange) => void
  /** A record to keep out of the state (e.g. an older echo of one of our own writes). */
  ignore?: (collection: Collection, stored: Stored<unknown>) => boolean
  reconnectDelayMs?: number
  /** Waits before asking the DID directory again (default RESOLVE_RETRY_DELAYS_MS). */
  resolveRetryDelaysMs?: readonly number[]
  /** How long after a record is skipped for want of its repo's key it is read again (default 30 s). */
  recheckDelayMs?: number
}

const BATCH_ROWS = 200
const BATCH_MS = 25

export class Ingestor {
  private hoses = new Map<string, Firehose>()
  readonly stats = { events: 0, applied: 0, invalid: 0, unproven: 0, errors: 0 }
  private readonly prover: CommitProver
  private readonly recheck: Recheck
  private batch: (() => void)[] = []
  private batchCursors = new Map<string, number>()
  private batchTimer?: NodeJS.Timeout
  private closed = false

  constructor(private readonly opts: IngestOptions) {
    const retryDelaysMs = opts.resolveRetryDelaysMs ?? RESOLVE_RETRY_DELAYS_MS
    const recheckDelayMs = opts.recheckDelayMs ?? UNAVAILABLE_TTL_MS
    // the key is asked for again when the skipped records are
    this.prover = new CommitProver(opts.idResolver, { retryDelaysMs, unavailableTtlMs: recheckDelayMs })
    this.recheck = new Recheck({
      prover: this.prover,
      reader: new RepoReader(opts.idResolver, retryDelaysMs),
      logger: opts.logger,
      delayMs: recheckDelayMs,
      apply: (s, found) => this.applyRechecked(s, found),
    })
  }

  /** Loads what earlier runs believed, so replays from the cursor are all that is needed. */
  restore(): number {
    let n = 0
    for (const row of this.opts.db.allRecords()) {
      if (!isSchedulerCollection(row.collection)) continue
      const valid = validateRecord(row.collection, JSON.parse(row.json))
      if (!valid.ok) continue
      this.opts.state.put(row.collection, { uri: row.uri, cid: row.cid, did: row.did, rkey: row.rkey, record: valid.record })
      n++
    }
    return n
  }

  sources(): string[] {
    return [...this.hoses.keys()]
  }

  /** Subscribes to one more PDS or relay (idempotent). */
  addSource(service: string): void {
    const url = service.replace(/^http/, 'ws').replace(/\/$/, '')
    if (this.hoses.has(url)) return
    const firehose = new Firehose({
      idResolver: this.opts.idResolver,
      service: url,
      filterCollections: ['commune.scheduler.*'],
      // block CIDs are still checked; the signature and MST proof are checked in handle()
      unauthenticatedCommits: true,
      excludeIdentity: true,
      excludeAccount: true,
      excludeSync: true,
      subscriptionReconnectDelay: this.opts.reconnectDelayMs ?? 1000,
      getCursor: () => this.batchCursors.get(url) ?? this.opts.db.getCursor(url),
      handleEvent: (evt) => this.handle(url, evt),
      onError: (err) => {
        this.stats.errors++
        this.opts.logger.warn({ err: err.message, source: url }, 'firehose error')
      },
    })
    this.hoses.set(url, firehose)
    void firehose.start()
  }

  /** Applies a record read outside the firehose (startup bootstrap); never overrides a newer one. */
  applyRecord(collection: Collection, stored: Stored<unknown>, overwrite = false): boolean {
    const valid = validateRecord(collection, stored.record)
    if (!valid.ok) {
      this.stats.invalid++
      this.opts.logger.warn({ uri: stored.uri, error: valid.error }, 'invalid record skipped')
      return false
    }
    if (!overwrite && this.known(collection, stored)) return false
    return this.store(collection, { ...stored, record: valid.record }, Date.now())
  }

  private known(collection: Collection, s: Stored<unknown>): boolean {
    const st = this.opts.state
    if (collection === 'commune.scheduler.meshletOwner') return st.meshletOwners.has(s.did)
    if (collection === 'commune.scheduler.capacity') return st.capacities.has(s.did)
    return [st.meshlets, st.clusters, st.workloads, st.bids, st.statuses, st.grants].some((m) => m.has(s.uri))
  }

  private async handle(source: string, evt: Event): Promise<void> {
    this.stats.events++
    if (evt.event !== 'create' && evt.event !== 'update' && evt.event !== 'delete') return
    const seenAt = Date.parse(evt.time) || Date.now()
    const { collection, rkey, did } = evt
    const uri = evt.uri.toString()
    if (!isSchedulerCollection(collection)) return
    const db = this.opts.db
    if (!(await this.prover.proves(evt))) {
      this.stats.unproven++
      const keyUnavailable = this.prover.keyUnavailable(did)
      if (keyUnavailable) {
        this.opts.logger.warn({ uri, did, err: keyUnavailable }, "record skipped until its repo's signing key can be resolved")
        this.recheck.add(uri, { collection, did, rkey })
      } else this.opts.logger.warn({ uri, commit: evt.commit.toString() }, 'record not proven by a signed commit: skipped')
      this.persistLater(source, evt.seq)
      return
    }
    this.recheck.superseded(uri)
    if (evt.event === 'delete') {
      this.persistLater(source, evt.seq, () => db.deleteRecord(uri))
      this.removed(collection, uri, did, rkey, seenAt)
      return
    }
    const valid = validateRecord(collection, evt.record)
    if (!valid.ok) {
      this.stats.invalid++
      this.opts.logger.warn({ uri, error: valid.error }, 'invalid record skipped')
      this.persistLater(source, evt.seq)
      return
    }
    const stored = { uri, cid: evt.cid.toString(), did, rkey, record: valid.record }
    if (this.opts.ignore?.(collection, stored)) {
      this.persistLater(source, evt.seq)
      return
    }
    this.persistLater(source, evt.seq, () => this.persist(collection, stored))
    if (this.opts.state.put(collection, stored)) {
      this.stats.applied++
      this.opts.onChange?.({ collection, uri, did, rkey, action: 'put', seenAt })
    }
  }

  /** Queues a write (if any) and the source's cursor past this event, for the next batch. */
  private persistLater(source: string, seq: number, write?: () => void): void {
    // an event that finishes after close is not persisted: the cursor replays it next time
    if (this.closed) return
    this.batchCursors.set(source, seq)
    this.queueWrite(write)
  }

  /** Queues a write for the next batch, behind every write queued before it. */
  private queueWrite(write?: () => void): void {
    if (this.closed) return
    if (write) this.batch.push(write)
    if (this.batch.length >= BATCH_ROWS) this.flush()
    else if (!this.batchTimer) {
      this.batchTimer = setTimeout(() => this.flush(), BATCH_MS)
      this.batchTimer.unref()
    }
  }

  /** Writes the queued records and cursors in one transaction. */
  flush(): void {
    clearTimeout(this.batchTimer)
    this.batchTimer = undefined
    if (this.batch.length === 0 && this.batchCursors.size === 0) return
    // the database closed under us (its owner is shutting down): the cursor replays the batch
    if (!this.opts.db.db.open) return
    const writes = this.batch
    const cursors = this.batchCursors
    this.batch = []
    this.batchCursors = new Map()
    const db = this.opts.db
    db.tx(() => {
      for (const write of writes) write()
      for (const [source, seq] of cursors) db.setCursor(source, seq)
    })
  }

  private store(collection: Collection, stored: Stored<unknown>, seenAt: number): boolean {
    // queued behind any firehose write of the same record, so the database keeps the order
    this.queueWrite(() => this.persist(collection, stored))
    const changed = this.opts.state.put(collection, stored as Stored<never>)
    if (changed) {
      this.stats.applied++
      this.opts.onChange?.({ collection, uri: stored.uri, did: stored.did, rkey: stored.rkey, action: 'put', seenAt })
    }
    return changed
  }

  /** A skipped record, read again with its repo's proof: what the repo holds now. */
  private applyRechecked(s: { uri: string; collection: Collection; did: string; rkey: string }, found: { cid: string; record: unknown } | null): void {
    if (this.closed) return
    if (found === null) {
      this.queueWrite(() => this.opts.db.deleteRecord(s.uri))
      this.removed(s.collection, s.uri, s.did, s.rkey, Date.now())
      return
    }
    const stored = { uri: s.uri, cid: found.cid, did: s.did, rkey: s.rkey, record: found.record }
    if (this.opts.ignore?.(s.collection, stored)) return
    if (this.applyRecord(s.collection, stored, true)) this.opts.logger.info({ uri: s.uri }, 'skipped record read again with its proof')
  }

  /** Takes a deleted record out of the state, telling whoever listens when it was there. */
  private removed(collection: Collection, uri: string, did: string, rkey: string, seenAt: number): void {
    if (!this.opts.state.delete(collection, did, rkey)) return
    this.stats.applied++
    this.opts.onChange?.({ collection, uri, did, rkey, action: 'delete', seenAt })
  }

  private persist(collection: Collection, s: Stored<unknown>): void {
    this.opts.db.putRecord({ uri: s.uri, collection, did: s.did, rkey: s.rkey, cid: s.cid, json: JSON.stringify(s.record) })
  }

  async close(): Promise<void> {
    this.recheck.close()
    await Promise.allSettled([...this.hoses.values()].map((h) => h.destroy()))
    this.hoses.clear()
    this.flush()
    this.closed = true
  }
}
