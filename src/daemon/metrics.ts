// The daemon's Prometheus metrics (GET /metrics on its XRPC port). Counters move where
// things happen (a write the PDS took, a container start, a firehose change); gauges that
// are a view of state (placements by phase, replicas by state, outbox depth) are computed
// when scraped, so they cannot drift from what the daemon believes.
import type { OutboxEntry } from '../repo/outbox.js'
import type { BidRecord, WorkloadStatusRecord } from '../records/index.js'
import type { Placement } from '../scheduler/placement.js'
import type { RecordChange } from '../sync/ingest.js'
import { Counter, Gauge, Histogram, newRegistry, type Registry } from '../util/metrics.js'

export interface MetricSources {
  /** This meshlet's own latest status records. */
  ownStatuses: () => Iterable<WorkloadStatusRecord>
  outboxDepth: () => number
  firehoseEvents: () => number
  /** Records refused since start: failed their lexicon, or not proven by a signed commit. */
  firehoseSkipped: () => { invalid: number; unproven: number }
}

export class DaemonMetrics {
  readonly registry: Registry
  private readonly phases = new Map<string, Placement['phase']>()
  private readonly writes: Counter<'kind'>
  private readonly answers: Counter<'answer'>
  private readonly ends: Counter<'state'>
  private readonly starts: Histogram<'outcome'>
  private readonly lag: Gauge

  constructor(did: string, sources: MetricSources) {
    this.registry = newRegistry({ prefix: 'meshlet_', labels: { meshlet: did } })
    const registers = [this.registry]
    this.writes = new Counter({ name: 'meshlet_repo_writes_total', help: 'Records the PDS took, by kind (bid, status:<state>, …).', labelNames: ['kind'], registers })
    this.answers = new Counter({ name: 'meshlet_bids_total', help: 'Answers written: offers and declines.', labelNames: ['answer'], registers })
    this.ends = new Counter({ name: 'meshlet_replica_ends_total', help: 'Replicas this meshlet ended, by final state (yielded, stopped, succeeded, failed).', labelNames: ['state'], registers })
    this.starts = new Histogram({
      name: 'meshlet_container_start_seconds',
      help: 'From the decision to start a replica to its container running (image pull included).',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    })
    this.lag = new Gauge({ name: 'meshlet_firehose_lag_seconds', help: 'From commit to applied, for the latest firehose change.', registers })
    const phases = this.phases
    new Gauge({
      name: 'meshlet_placements',
      help: 'Workloads this meshlet has evaluated, by placement phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        const n = { placing: 0, placed: 0, queued: 0, failed: 0 }
        for (const p of phases.values()) n[p]++
        for (const [phase, v] of Object.entries(n)) this.set({ phase }, v)
      },
    })
    new Gauge({
      name: 'meshlet_replicas',
      help: 'This meshlet\'s replicas, by the state of its latest status.',
      labelNames: ['state'],
      registers,
      collect() {
        const n: Record<string, number> = { scheduled: 0, running: 0, paused: 0, succeeded: 0, failed: 0, stopped: 0, yielded: 0 }
        for (const s of sources.ownStatuses()) n[s.state] = (n[s.state] ?? 0) + 1
        for (const [state, v] of Object.entries(n)) this.set({ state }, v)
      },
    })
    new Gauge({ name: 'meshlet_outbox_depth', help: 'Writes queued for the PDS.', registers, collect() { this.set(sources.outboxDepth()) } })
    new Gauge({ name: 'meshlet_firehose_events', help: 'Firehose events handled since start.', registers, collect() { this.set(sources.firehoseEvents()) } })
    new Gauge({
      name: 'meshlet_firehose_records_skipped',
      help: 'Records refused since start: invalid (failed their lexicon) or unproven (not shown by a signed commit).',
      labelNames: ['reason'],
      registers,
      collect() {
        for (const [reason, v] of Object.entries(sources.firehoseSkipped())) this.set({ reason }, v)
      },
    })
  }

  placement(p: Placement): void {
    this.phases.set(p.workload.uri, p.phase)
  }

  written(entries: OutboxEntry[]): void {
    for (const e of entries) {
      if (e.collection === 'commune.scheduler.bid') {
        const decline = (e.record as BidRecord).decline === true
        this.writes.inc({ kind: 'bid' })
        this.answers.inc({ answer: decline ? 'decline' : 'offer' })
      } else if (e.collection === 'commune.scheduler.workloadStatus') {
        const state = (e.record as WorkloadStatusRecord).state
        this.writes.inc({ kind: `status:${state}` })
        if (['yielded', 'stopped', 'succeeded', 'failed'].includes(state)) this.ends.inc({ state })
      } else this.writes.inc({ kind: e.collection.split('.').pop()! })
    }
  }

  change(c: RecordChange): void {
    this.lag.set(Math.max(0, (Date.now() - c.seenAt) / 1000))
  }

  started(seconds: number, ok: boolean): void {
    this.starts.observe({ outcome: ok ? 'running' : 'failed' }, seconds)
  }
}
