// A persistent outbox for this meshlet's own records (bids and statuses): a write that
// fails (PDS 5xx, network error, rate limit) stays in SQLite and is retried with
// backoff, across restarts, until the PDS takes it. Writes queued together go out in
// one applyWrites commit; a later put of the same record replaces one not yet sent,
// except that a finished status is never replaced by an unfinished one.
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
    const rows = this.o.db.db.prepare('SELECT seq, collection, rkey, json, attempts FROM outbox ORDER BY seq').all() as {
      seq: number
      collection: Collection
      rkey: string
      json: string
      attempts: number
    }[]
    return rows.map((r) => ({ seq: r.seq, collection: r.collection, rkey: r.rkey, record: JSON.parse(r.json), attempts: r.attempts }))
  }

  get depth(): number {
    return (this.o.db.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n
  }

  /** Queues puts to be written together; returns at once (the write happens in the background). */
  enqueue(writes: { collection: Collection; rkey: string; record: RecordTypes[Collection] }[]): void {
    if (writes.length === 0) return
    const db = this.o.db.db
    const find = db.prepare('SELECT seq, json FROM outbox WHERE collection = ? AND rkey = ? ORDER BY seq DESC LIMIT 1')
    const insert = db.prepare('INSERT INTO outbox (collection, rkey, json) VALUES (?, ?, ?)')
    const replace = db.prepare('UPDATE outbox SET json = ? WHERE seq = ?')
    this.o.db.tx(() => {
      for (const w of writes) {
        const json = JSON.stringify(w.record)
        const prev = this.inFlight.has(`${w.collection}/${w.rkey}`) ? undefined : (find.get(w.collection, w.rkey) as { seq: number; json: string } | undefined)
        if (!prev) {
          insert.run(w.collection, w.rkey, json)
          continue
        }
        const before = (JSON.parse(prev.json) as { state?: string }).state ?? ''
        const after = (w.record as { state?: string }).state ?? ''
        if (FINISHED.has(before) && !FINISHED.has(after)) continue
        replace.run(json, prev.seq)
      }
    })
    this.kick()
  }

  private inFlight = new Set<string>()

  /** Writes what is due now; resolves when this attempt is over (written or scheduled for retry). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing
    this.flushing = this.attempt().finally(() => {
      this.flushing = null
    })
    return this.flushing
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
    if (this.closed || this.now() < this.retryAt) return
    const batch = this.pending().slice(0, this.o.maxBatch ?? 100)
    if (batch.length === 0) return
    // one write per record in a commit: the newest wins
    const newest = new Map(batch.map((e) => [`${e.collection}/${e.rkey}`, e]))
    const entries = [...newest.values()]
    for (const e of entries) this.inFlight.add(`${e.collection}/${e.rkey}`)
    const writes: Write[] = entries.map((e) => ({ op: 'put', collection: e.collection, rkey: e.rkey, record: e.record }))
    try {
      const results = await this.o.writer.applyWrites(writes)
      const del = this.o.db.db.prepare('DELETE FROM outbox WHERE seq = ?')
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
        const del = this.o.db.db.prepare('DELETE FROM outbox WHERE seq = ?')
        this.o.db.tx(() => batch.forEach((x) => del.run(x.seq)))
        this.stats.dropped += batch.length
        this.o.logger.error({ err: e.message, status: e.status, writes: entries.map((x) => `${x.collection}/${x.rkey}`) }, 'the PDS refused our writes as invalid; dropped')
      } else {
        this.failures++
        const delay = this.backoff(e)
        this.retryAt = this.now() + delay
        const bump = this.o.db.db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?')
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
