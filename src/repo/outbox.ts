// A persistent outbox for this meshlet's own records (bids and statuses): a write that
// fails (PDS 5xx, network error, rate limit) stays in SQLite and is retried with
// backoff, across restarts, until the PDS takes it. Writes queued together go out in
// one applyWrites commit; a later put of the same record replaces one not yet sent,
// except that a finished status is never replaced by an unfinished one of the same
// workload version (not even while the finished one is being sent).
import type { Logger } from 'pino'
import { TID } from '@atproto/common-web'
import type { LocalDb } from '../db/index.js'
import type { Collection, RecordTypes } from '../records/index.js'
import type { RepoWriter, Write, WriteResult } from './writer.js'

/** A queued write: always a put with a fixed record key, so a retry after an unclear failure cannot duplicate it. */
export interface OutboxEntry {
  seq: number
  collection: Collection
  rkey: string
  record: RecordTypes[Collection]
  attempts: number
}

export interface OutboxOptions {
  db: LocalDb
  writer: RepoWriter
  logger: Logger
  /** Called after the PDS took a batch. */
  onWritten?: (entries: OutboxEntry[], results: WriteResult[]) => void
  /** Called when a batch failed and will be retried. */
  onRetry?: (err: Error, delayMs: number) => void
  minBackoffMs?: number
  maxBackoffMs?: number
  /** Most writes in one commit (applyWrites allows 200). */
  maxBatch?: number
  now?: () => number
}

const FINISHED = new Set(['succeeded', 'failed', 'stopped', 'yielded'])

export class Outbox {
  private flushing: Promise<void> | null = null
  private timer?: NodeJS.Timeout
  private retryAt = 0
  private failures = 0
  private closed = false
  /** Writes the PDS took, and batches that failed (for metrics and tests). */
  readonly stats = { written: 0, commits: 0, failedAttempts: 0, dropped: 0 }

  constructor(private readonly o: OutboxOptions) {
    o.db.db.exec(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, rkey TEXT NOT NULL,
      json TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)`)
  }

  /** A fresh record key for a record that has none yet (a bid). */
  static newKey(): string {
    return TID.nextStr()
  }

  /** What waits to be written, oldest first (e.g. to believe it again after a restart). */
  pending(): OutboxEntry[] {
    const rows = this.o.db.statement('SELECT seq, collection, rkey, json, attempts FROM outbox ORDER BY seq').all() as {
      seq: number
      collection: Collection
      rkey: string
      json: string
      attempts: number
    }[]
    return rows.map((r) => ({ seq: r.seq, collection: r.collection, rkey: r.rkey, record: JSON.parse(r.json), attempts: r.attempts }))
  }

  get depth(): number {
    return (this.o.db.statement('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n
  }

  /** Queues puts to be written together; returns at once (the write happens in the background). */
  enqueue(writes: { collection: Collection; rkey: string; record: RecordTypes[Collection] }[]): void {
    if (writes.length === 0) return
    const find = this.o.db.statement('SELECT seq, json FROM outbox WHERE collection = ? AND rkey = ? ORDER BY seq DESC LIMIT 1')
    const insert = this.o.db.statement('INSERT INTO outbox (collection, rkey, json) VALUES (?, ?, ?)')
    const replace = this.o.db.statement('UPDATE outbox SET json = ? WHERE seq = ?')
    this.o.db.tx(() => {
      for (const w of writes) {
        const json = JSON.stringify(w.record)
        const prev = find.get(w.collection, w.rkey) as { seq: number; json: string } | undefined
        if (!prev) {
          insert.run(w.collection, w.rkey, json)
          continue
        }
        // the rule holds for a version being sent too: it is not written yet
        if (!supersedes(JSON.parse(prev.json), w.record)) continue
        // one being sent stays as it is (its batch is deleted once written): the newer version queues behind it
        if (this.inFlight.has(prev.seq)) insert.run(w.collection, w.rkey, json)
        else replace.run(json, prev.seq)
      }
    })
    this.kick()
  }

  /** Rows of the batch being sent now. */
  private inFlight = new Set<number>()

  /** Writes what is due now; resolves when this attempt is over (written or scheduled for retry). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing
    this.flushing = this.attempt().finally(() => {
      this.flushing = null
    })
    return this.flushing
  }

  /** The newest queued write now (0 if none): `flushThrough` it to have everything queued so far written. */
  lastSeq(): number {
    return (this.o.db.statement('SELECT COALESCE(MAX(seq), 0) AS seq FROM outbox').get() as { seq: number }).seq
  }

  /**
   * Writes everything queued up to `seq` (later writes may go along); gives up after a few
   * attempts that leave it queued (the PDS is failing: retries go on in the background).
   */
  async flushThrough(seq: number, attempts = 5): Promise<boolean> {
    const waiting = this.o.db.statement('SELECT COUNT(*) AS n FROM outbox WHERE seq <= ?')
    for (let i = 0; i < attempts; i++) {
      if ((waiting.get(seq) as { n: number }).n === 0) return true
      await this.flush()
    }
    return (waiting.get(seq) as { n: number }).n === 0
  }

  /** Resolves once nothing is queued (or the outbox is closed). */
  async drained(): Promise<void> {
    while (!this.closed && this.depth > 0) {
      await this.flush()
      if (this.depth > 0) await new Promise((r) => setTimeout(r, Math.max(10, Math.min(200, this.retryAt - this.now()))))
    }
  }

  private now(): number {
    return this.o.now?.() ?? Date.now()
  }

  private kick(): void {
    if (this.closed || this.timer) return
    const wait = Math.max(0, this.retryAt - this.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flush()
    }, wait)
    this.timer.unref?.()
  }

  private async attempt(): Promise<void> {
    if (this.closed) return
    if (this.now() < this.retryAt) {
      // a timer may fire a little before retryAt by this clock (timers and Date.now() tick
      // apart); without a new timer nothing would be written until the next enqueue
      this.kick()
      return
    }
    const batch = this.pending().slice(0, this.o.maxBatch ?? 100)
    if (batch.length === 0) return
    // one write per record in a commit: the newest wins (a finished status stays finished)
    const newest = new Map<string, OutboxEntry>()
    for (const e of batch) {
      const key = `${e.collection}/${e.rkey}`
      const prev = newest.get(key)
      if (!prev || supersedes(prev.record, e.record)) newest.set(key, e)
    }
    const entries = [...newest.values()]
    for (const e of batch) this.inFlight.add(e.seq)
    const writes: Write[] = entries.map((e) => ({ op: 'put', collection: e.collection, rkey: e.rkey, record: e.record }))
    try {
      const results = await this.o.writer.applyWrites(writes)
      const del = this.o.db.statement('DELETE FROM outbox WHERE seq = ?')
      this.o.db.tx(() => batch.forEach((e) => del.run(e.seq)))
      this.failures = 0
      this.retryAt = 0
      this.stats.written += entries.length
      this.stats.commits++
      this.o.onWritten?.(entries, results)
    } catch (err) {
      const e = err as Error & { status?: number; headers?: Record<string, string> }
      this.stats.failedAttempts++
      if (isPermanent(e)) {
        // our own record refused as invalid: retrying cannot help; say so loudly and move on
        const del = this.o.db.statement('DELETE FROM outbox WHERE seq = ?')
        this.o.db.tx(() => batch.forEach((x) => del.run(x.seq)))
        this.stats.dropped += batch.length
        this.o.logger.error({ err: e.message, status: e.status, writes: entries.map((x) => `${x.collection}/${x.rkey}`) }, 'the PDS refused our writes as invalid; dropped')
      } else {
        this.failures++
        const delay = this.backoff(e)
        this.retryAt = this.now() + delay
        const bump = this.o.db.statement('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?')
        this.o.db.tx(() => batch.forEach((x) => bump.run(x.seq)))
        this.o.onRetry?.(e, delay)
        this.o.logger.warn({ err: e.message, status: e.status, queued: this.depth, retryInMs: delay }, 'write failed; kept in the outbox')
      }
    } finally {
      this.inFlight.clear()
    }
    if (this.depth > 0) this.kick()
  }

  private backoff(e: { status?: number; headers?: Record<string, string> }): number {
    const min = this.o.minBackoffMs ?? 250
    const max = this.o.maxBackoffMs ?? 30_000
    if (e.status === 429) {
      const reset = Number(header(e.headers, 'ratelimit-reset'))
      if (Number.isFinite(reset) && reset > 0) return clamp(reset * 1000 - this.now(), min, 3_600_000)
    }
    return Math.min(max, min * 2 ** Math.min(16, this.failures - 1))
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flushing
  }
}

/**
 * Whether a later put may replace an earlier version of the same record: not an
 * unfinished status over a finished one of the same workload version (a new version of
 * the workload starts a fresh status under the same key).
 */
function supersedes(before: unknown, after: unknown): boolean {
  const b = before as { state?: string; workload?: { cid?: string } }
  const a = after as { state?: string; workload?: { cid?: string } }
  if (b.workload?.cid !== a.workload?.cid) return true
  return !(FINISHED.has(b.state ?? '') && !FINISHED.has(a.state ?? ''))
}

function isPermanent(e: { status?: number }): boolean {
  return e.status !== undefined && e.status >= 400 && e.status < 500 && ![401, 408, 409, 429].includes(e.status)
}

function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v
  return undefined
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v))
}
