// What bench:e2e observes of the embedded commune without changing src/: hooks on the
// daemons' own instances (when the winner saw the workload, queued and wrote its offer,
// was confirmed, called the driver), a plain firehose follower (when anyone could see the
// workload, the offer and the running status), and two diagnostics that show where time
// goes by removing it (an idle PDS's sequencer backoff, the wait for one's own offer's echo).
import { LocalDb } from '../../src/db/index.js'
import type { ReplicaSpec } from '../../src/executor/types.js'
import { COLLECTIONS, type BidRecord } from '../../src/records/index.js'
import { PublicState } from '../../src/scheduler/state.js'
import { Ingestor } from '../../src/sync/ingest.js'
import { silentLogger } from '../../src/util/logger.js'
import type { Commune, CommuneMember } from './commune.js'
import { wallMs } from './stats.js'

/**
 * Diagnostic: look at a workload again as soon as this meshlet's own offer is queued, or
 * once its repo took it, instead of when the offer's echo comes back on the firehose.
 */

/** What the daemons did for each workload, seen through hooks on their instances (src/ unchanged). */
export class DaemonProbe {
  readonly seen = new Map<string, number>()
  readonly bidQueued = new Map<string, number>()
  readonly bidAcked = new Map<string, number>()
  readonly decided = new Map<string, number>()
  readonly driverCalled = new Map<string, number>()
  readonly driverReturned = new Map<string, number>()

  constructor(member: CommuneMember) {
    const { ctx } = member.daemon
    const did = member.daemon.did
    const first = (m: Map<string, number>, uri: string) => void (m.has(uri) || m.set(uri, wallMs()))
    // the ingestor calls engine.onChange through the instance: wrapping it times delivery
    const onChange = ctx.engine.onChange.bind(ctx.engine)
    ctx.engine.onChange = (c) => {
      if (c.collection === COLLECTIONS.workload && c.action === 'put') first(this.seen, c.uri)
      onChange(c)
    }
    const enqueue = ctx.outbox.enqueue.bind(ctx.outbox)
    ctx.outbox.enqueue = (writes) => {
      for (const w of writes) {
        if (w.collection === COLLECTIONS.bid) first(this.bidQueued, (w.record as BidRecord).workload.uri)
      }
      enqueue(writes)
    }
    // the outbox writes through this instance: its answer is when the PDS took the bid
    const applyWrites = ctx.writer.applyWrites.bind(ctx.writer)
    ctx.writer.applyWrites = async (writes) => {
      const results = await applyWrites(writes)
      for (const w of writes) {
        if (w.op === 'delete' || w.collection !== COLLECTIONS.bid) continue
        first(this.bidAcked, (w.record as BidRecord).workload.uri)
      }
      return results
    }
    ctx.engine.listeners.add((p) => {
      if (p.confirmed.includes(did)) first(this.decided, p.workload.uri)
    })
    const driver = ctx.driver
    if (!driver) throw new Error('the e2e bench needs the docker driver')
    const start = driver.start.bind(driver)
    driver.start = async (spec: ReplicaSpec) => {
      first(this.driverCalled, spec.workloadUri)
      const info = await start(spec)
      first(this.driverReturned, spec.workloadUri)
      return info
    }
  }
}

/** Bids and running statuses as any follower sees them on the firehose. */
export class FirehoseProbe {
  readonly workloadSeen = new Map<string, number>()
  readonly bidSeen = new Map<string, number>()
  readonly runningSeen = new Map<string, number>()
  private readonly db = new LocalDb(':memory:')
  private readonly ingestor: Ingestor

  constructor(commune: Commune) {
    const state = new PublicState()
    this.ingestor = new Ingestor({
      idResolver: commune.net.idResolver,
      db: this.db,
      state,
      logger: silentLogger(),
      onChange: (c) => {
        if (c.action !== 'put') return
        const now = wallMs()
        if (c.collection === COLLECTIONS.workload) {
          if (!this.workloadSeen.has(c.uri)) this.workloadSeen.set(c.uri, now)
        } else if (c.collection === COLLECTIONS.bid) {
          const target = state.bids.get(c.uri)?.record.workload.uri
          if (target && !this.bidSeen.has(target)) this.bidSeen.set(target, now)
        } else if (c.collection === COLLECTIONS.workloadStatus) {
          const s = state.statuses.get(c.uri)?.record
          if (s?.state === 'running' && !this.runningSeen.has(s.workload.uri)) this.runningSeen.set(s.workload.uri, now)
        }
      },
    })
    this.ingestor.addSource(commune.net.pdsUrl)
  }

  async close(): Promise<void> {
    await this.ingestor.close()
    this.db.close()
  }
}
