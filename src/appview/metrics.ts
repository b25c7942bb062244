// The appview's Prometheus metrics. Counters move as the indexer works; gauges are read
// from the indexer and the store when /metrics is scraped, so they are never stale.
import type { Registry } from 'prom-client'
import { Counter, Gauge, Histogram, newRegistry } from '../util/metrics.js'

/** What the gauges read at scrape time (the indexer provides it). */
export interface MetricsSource {
  recordCounts(): Promise<Map<string, number>>
  invalidCounts(): Promise<Map<string, number>>
  repoCounts(): Map<string, number>
  sourceLag(now: number): { source: string; events: number; seconds: number }[]
  heartbeatAges(now: number): { meshlet: string; seconds: number }[]
  workloadCounts(): Promise<{ state: string; phase: string; count: number }[]>
}

export class AppviewMetrics {
  readonly registry: Registry
  readonly indexed: Counter<'collection' | 'via'>
  readonly invalid: Counter<'collection'>
  readonly stale: Counter<'reason'>
  readonly backfills: Counter<'outcome'>
  readonly backfillSeconds: Histogram
  readonly indexDelay: Histogram
  private source?: MetricsSource

  constructor(now: () => number = Date.now) {
    this.registry = newRegistry({ prefix: 'meshlet_appview_' })
    const registers = [this.registry]
    this.indexed = new Counter({
      name: 'meshlet_appview_records_indexed_total',
      help: 'Record versions indexed, by collection and how they arrived (backfill or firehose).',
      labelNames: ['collection', 'via'],
      registers,
    })
    this.invalid = new Counter({
      name: 'meshlet_appview_invalid_records_total',
      help: 'Record versions skipped because they fail their lexicon, by collection.',
      labelNames: ['collection'],
      registers,
    })
    this.stale = new Counter({
      name: 'meshlet_appview_events_dropped_total',
      help: 'Firehose events dropped as already applied: inside a backfilled snapshot, or replayed from an older cursor.',
      labelNames: ['reason'],
      registers,
    })
    this.backfills = new Counter({ name: 'meshlet_appview_backfills_total', help: 'getRepo backfills, by outcome.', labelNames: ['outcome'], registers })
    this.backfillSeconds = new Histogram({
      name: 'meshlet_appview_backfill_seconds',
      help: 'Time to read, verify and index one repo.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    })
    this.indexDelay = new Histogram({
      name: 'meshlet_appview_index_delay_seconds',
      help: 'From a commit (its firehose time) to its record being queryable here.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    const self = this
    new Gauge({
      name: 'meshlet_appview_records',
      help: 'Records indexed now, by collection.',
      labelNames: ['collection'],
      registers,
      async collect() {
        this.reset()
        for (const [collection, n] of (await self.source?.recordCounts()) ?? []) this.set({ collection }, n)
      },
    })
    new Gauge({
      name: 'meshlet_appview_invalid_records',
      help: 'Records whose current version fails its lexicon, by collection.',
      labelNames: ['collection'],
      registers,
      async collect() {
        this.reset()
        for (const [collection, n] of (await self.source?.invalidCounts()) ?? []) this.set({ collection }, n)
      },
    })
    new Gauge({
      name: 'meshlet_appview_repos',
      help: 'Repos of the commune, by backfill status (pending, backfilling, ready, failed).',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset()
        for (const [status, n] of self.source?.repoCounts() ?? []) this.set({ status }, n)
      },
    })
    new Gauge({
      name: 'meshlet_appview_firehose_lag_events',
      help: 'Firehose events received and not yet handled, per source.',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset()
        for (const l of self.source?.sourceLag(now()) ?? []) this.set({ source: l.source }, l.events)
      },
    })
    new Gauge({
      name: 'meshlet_appview_firehose_lag_seconds',
      help: 'While events wait, how far behind real time the last handled commit is; 0 when caught up.',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset()
        for (const l of self.source?.sourceLag(now()) ?? []) this.set({ source: l.source }, l.seconds)
      },
    })
    new Gauge({
      name: 'meshlet_appview_heartbeat_age_seconds',
      help: "Age of each meshlet's last heartbeat (capacity record updatedAt).",
      labelNames: ['meshlet'],
      registers,
      collect() {
        this.reset()
        for (const h of self.source?.heartbeatAges(now()) ?? []) this.set({ meshlet: h.meshlet }, h.seconds)
      },
    })
    const byWorkload = (name: string, help: string, label: 'state' | 'phase') =>
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        async collect() {
          this.reset()
          const totals = new Map<string, number>()
          for (const c of (await self.source?.workloadCounts()) ?? []) totals.set(c[label], (totals.get(c[label]) ?? 0) + c.count)
          for (const [v, n] of totals) this.set({ [label]: v }, n)
        },
      })
    byWorkload('meshlet_appview_workloads_by_phase', 'Workloads by placement phase (placing, placed, queued, failed).', 'phase')
    byWorkload('meshlet_appview_workloads_by_state', 'Workloads by state (pending, queued, running, succeeded, failed, stopped).', 'state')
  }

  bind(source: MetricsSource): void {
    this.source = source
  }
}
