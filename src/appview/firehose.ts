// One firehose subscription (a PDS or a relay) for the appview. Every op is proven by its
// signed commit against the repo's DID key, as the meshlet's ingestion does
// (src/sync/commit-proof.ts, src/sync/ingest.ts); what differs is what the appview needs around it:
// - the commit's `rev` reaches the handler, so events already inside a getRepo snapshot,
//   or replayed from an older cursor, are told apart and dropped;
// - every event's seq is seen before it is parsed (an EventRunner), so the lag in events
//   is known, and events of repos outside the commune are skipped without parsing or
//   verifying them (a relay carries the whole network);
// - events are handled one at a time in order; the cursor is persisted with each record
//   and, for skipped events, every couple of seconds (replays are idempotent).
import { Firehose, type CommitEvt, type Event, type EventRunner, type SyncEvt } from '@atproto/sync'
import type { IdResolver } from '@atproto/identity'
import type { Logger } from 'pino'
import { CommitProver } from '../sync/commit-proof.js'

export interface SourceHandlers {
  /** Is this repo in the commune? Others are skipped unparsed. */
  accepts(did: string): boolean
  onCommit(source: string, evt: CommitEvt): Promise<void>
  onSync(source: string, evt: SyncEvt): Promise<void>
  /** A record of this repo was skipped because its signing key could not be resolved (the directory gave no answer). */
  onKeyUnavailable(source: string, did: string): void
}

export interface SourceOptions {
  url: string
  idResolver: IdResolver
  logger: Logger
  handlers: SourceHandlers
  getCursor(): Promise<number | undefined>
  saveCursor(seq: number): Promise<void>
  reconnectDelayMs?: number
  cursorFlushMs?: number
}

interface Queued {
  seq: number
  handler?: () => Promise<void>
}

/** The websocket URL of a PDS or relay given as http(s) or ws(s). */
export function firehoseUrl(service: string): string {
  return service.replace(/^http/, 'ws').replace(/\/$/, '')
}

export class FirehoseSource implements EventRunner {
  readonly url: string
  /** Highest seq received. */
  seenSeq = 0
  /** Every event up to this seq is handled (or skipped). */
  handledSeq = 0
  /** Commit time (ms) of the last commune event handled. */
  lastEventTime?: number
  /** When the subscription first asked for its cursor (it was dialling). */
  dialledAt?: number
  readonly dialled: Promise<void>
  readonly stats = { events: 0, skipped: 0, unproven: 0, errors: 0 }
  private resolveDialled!: () => void
  private queue: Queued[] = []
  private pumping = false
  private persisted = 0
  private hose: Firehose
  private prover: CommitProver
  private flusher: NodeJS.Timeout
  private closed = false

  constructor(private readonly opts: SourceOptions) {
    this.url = firehoseUrl(opts.url)
    this.dialled = new Promise((r) => (this.resolveDialled = r))
    this.prover = new CommitProver(opts.idResolver)
    this.hose = new Firehose({
      idResolver: opts.idResolver,
      service: this.url,
      runner: this,
      filterCollections: ['commune.scheduler.*'],
      excludeIdentity: true,
      excludeAccount: true,
      // block CIDs are still checked; the signature and MST proof are checked in dispatch()
      unauthenticatedCommits: true,
      subscriptionReconnectDelay: opts.reconnectDelayMs ?? 1000,
      handleEvent: (evt) => this.dispatch(evt),
      onError: (err) => {
        this.stats.errors++
        const cause = (err as { cause?: Error }).cause
        opts.logger.warn({ source: this.url, err: err.message, cause: cause?.message }, 'firehose error')
      },
    })
    this.flusher = setInterval(() => void this.flushCursor(), opts.cursorFlushMs ?? 2000)
    this.flusher.unref()
  }

  start(): void {
    void this.hose.start()
  }

  /** Events received and not yet handled. */
  get lagEvents(): number {
    return Math.max(0, this.seenSeq - this.handledSeq)
  }

  get pending(): number {
    return this.queue.length + (this.pumping ? 1 : 0)
  }

  // EventRunner: the subscription asks for the cursor each time it (re)connects
  async getCursor(): Promise<number | undefined> {
    if (this.dialledAt === undefined) {
      this.dialledAt = Date.now()
      this.resolveDialled()
    }
    const saved = await this.opts.getCursor()
    return Math.max(saved ?? 0, this.handledSeq) || saved
  }

  async trackEvent(did: string, seq: number, handler: () => Promise<void>): Promise<void> {
    if (this.closed) return
    this.seenSeq = Math.max(this.seenSeq, seq)
    if (!this.opts.handlers.accepts(did)) {
      this.stats.skipped++
      // a skipped event is handled once everything before it is
      if (this.queue.length === 0 && !this.pumping) this.handledSeq = Math.max(this.handledSeq, seq)
      else this.queue.push({ seq })
      return
    }
    this.queue.push({ seq, handler })
    void this.pump()
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.queue.length && !this.closed) {
        const next = this.queue.shift()!
        if (next.handler) {
          this.stats.events++
          try {
            await next.handler()
          } catch (err) {
            this.stats.errors++
            this.opts.logger.warn({ source: this.url, seq: next.seq, err: (err as Error).message }, 'firehose event failed')
          }
        }
        this.handledSeq = Math.max(this.handledSeq, next.seq)
      }
    } finally {
      this.pumping = false
    }
  }

  private async dispatch(evt: Event): Promise<void> {
    if (evt.event === 'create' || evt.event === 'update' || evt.event === 'delete') {
      if (!(await this.prover.proves(evt))) {
        this.stats.unproven++
        const keyUnavailable = this.prover.keyUnavailable(evt.did)
        if (keyUnavailable) {
          this.opts.logger.warn({ source: this.url, uri: evt.uri.toString(), err: keyUnavailable }, "record skipped: the repo's signing key could not be resolved; the repo will be read again")
          this.opts.handlers.onKeyUnavailable(this.url, evt.did)
        } else this.opts.logger.warn({ source: this.url, uri: evt.uri.toString(), commit: evt.commit.toString() }, 'record not proven by a signed commit: skipped')
        return
      }
      await this.opts.handlers.onCommit(this.url, evt)
      this.lastEventTime = Date.parse(evt.time) || Date.now()
    } else if (evt.event === 'sync') {
      await this.opts.handlers.onSync(this.url, evt)
    }
  }

  private async flushCursor(): Promise<void> {
    const seq = this.handledSeq
    if (seq <= this.persisted) return
    try {
      await this.opts.saveCursor(seq)
      this.persisted = seq
    } catch (err) {
      this.opts.logger.warn({ source: this.url, err: (err as Error).message }, 'could not save the firehose cursor')
    }
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.flusher)
    this.resolveDialled()
    await this.hose.destroy()
    // let the event under way finish, so its record and cursor land together
    while (this.pumping) await new Promise((r) => setTimeout(r, 10))
    await this.flushCursor()
  }
}
