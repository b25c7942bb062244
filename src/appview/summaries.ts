// Keeps the store's workload summaries (the rows listWorkloads pages through) equal to
// what place() says now. A workload is recomputed when one of its own records changes;
// records every placement reads (links, clusters, grants, heartbeats) mark every open
// workload; and the placement's own nextDeadline (a heartbeat expiring, the queue
// timeout) brings it back when time alone changes the answer. Changes are coalesced.
import type { Logger } from 'pino'
import { place, type PlacementOptions } from '../scheduler/placement.js'
import type { PublicState } from '../scheduler/state.js'
import type { AppviewStore } from './store.js'
import { isoOf, workloadView } from './views.js'

export interface SummaryOptions {
  state: PublicState
  store: AppviewStore
  logger: Logger
  now: () => number
  placement?: PlacementOptions
  /** Called after a batch landed (metrics, live dashboards). */
  onFlushed?: () => void
  coalesceMs?: number
}

export class Summaries {
  private dirty = new Set<string>()
  private allOpen = false
  /** uri → final (nothing but its own records can change it). */
  private final = new Map<string, boolean>()
  private deadlines = new Map<string, number>()
  private flushTimer?: NodeJS.Timeout
  private deadlineTimer?: NodeJS.Timeout
  private flushing?: Promise<void>
  private closed = false
  readonly stats = { computed: 0 }

  constructor(private readonly opts: SummaryOptions) {}

  /** After a restart: which summaries exist and which may still change. */
  async load(): Promise<void> {
    this.final = await this.opts.store.summaryFinality()
    for (const uri of this.opts.state.workloads.keys()) if (this.final.get(uri) !== true) this.dirty.add(uri)
    for (const uri of this.final.keys()) if (!this.opts.state.workloads.has(uri)) this.dirty.add(uri)
  }

  workloadChanged(uri: string): void {
    this.dirty.add(uri)
    this.schedule()
  }

  /** A record every placement reads changed: every workload that is not final may move. */
  everythingChanged(): void {
    this.allOpen = true
    this.schedule()
  }

  private schedule(): void {
    if (this.flushTimer || this.closed) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      void this.flush()
    }, this.opts.coalesceMs ?? 50)
  }

  /** Recomputes everything marked; resolves when the store holds the result. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing
    if (this.dirty.size === 0 && !this.allOpen) return
    this.flushing = this.recompute().finally(() => (this.flushing = undefined))
    await this.flushing
  }

  get idle(): boolean {
    return !this.flushing && !this.flushTimer && this.dirty.size === 0 && !this.allOpen
  }

  private async recompute(): Promise<void> {
    const { state, store, now } = this.opts
    const uris = new Set(this.dirty)
    this.dirty.clear()
    if (this.allOpen) {
      this.allOpen = false
      for (const uri of state.workloads.keys()) if (this.final.get(uri) !== true) uris.add(uri)
    }
    const t = now()
    for (const uri of uris) {
      try {
        const w = state.workloads.get(uri)
        const p = w && place(state, uri, t, this.opts.placement)
        if (!w || !p) {
          await store.deleteSummary(uri)
          this.final.delete(uri)
          this.deadlines.delete(uri)
          continue
        }
        const { view, final } = workloadView(state, w, p)
        await store.putSummary({ uri, owner: w.did, createdAt: isoOf(w.record.createdAt) ?? w.record.createdAt, state: view.state, phase: view.phase, final, view })
        this.stats.computed++
        this.final.set(uri, final)
        if (p.nextDeadline !== null && !final) this.deadlines.set(uri, p.nextDeadline)
        else this.deadlines.delete(uri)
      } catch (err) {
        this.opts.logger.warn({ uri, err: (err as Error).message }, 'could not summarise a workload')
      }
    }
    this.armDeadline()
    this.opts.onFlushed?.()
  }

  /** One timer, at the earliest deadline: those due are recomputed then. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer)
    if (this.closed || this.deadlines.size === 0) return
    const next = Math.min(...this.deadlines.values())
    // +1 ms: a deadline is the first moment the answer differs
    const delay = Math.min(Math.max(0, next - this.opts.now() + 1), 2 ** 31 - 1)
    this.deadlineTimer = setTimeout(() => {
      const t = this.opts.now()
      for (const [uri, d] of this.deadlines) if (d <= t) this.dirty.add(uri)
      void this.flush()
    }, delay)
    this.deadlineTimer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.flushTimer)
    clearTimeout(this.deadlineTimer)
    this.flushTimer = undefined
    while (this.flushing) await this.flushing
  }
}
