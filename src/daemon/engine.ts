// The placement engine: a loop around the pure core. For each workload whose records
// changed (or whose next deadline came), it computes the agreed placement, asks
// decide() what this meshlet should do, and applies the answer: bids and statuses go to
// the persistent outbox (believed at once), starts go to a bounded pool so a slow image
// pull never stalls placement, stops go to the driver.
import type { Logger } from 'pino'
import { diskFloorRefusal, type DiskUsage } from '../executor/disk.js'
import type { Driver, ReplicaInfo, ReplicaSpec, Tier } from '../executor/types.js'
import { replicaKey } from '../executor/types.js'
import { reconcile } from '../executor/reconcile.js'
import { COLLECTIONS, type Collection, type RecordTypes, type Resources, type ShareGrantRecord, type WorkloadRecord, type WorkloadStatusRecord } from '../records/index.js'
import { Outbox, type OutboxEntry } from '../repo/outbox.js'
import { decide, type Decision, type LocalReplica, type LocalView } from '../scheduler/decide.js'
import { eligibility, grantLimitRefusal, holdsReplica, jobTimeoutSeconds, maxConcurrentJobs, revocation, type Eligibility } from '../scheduler/grants.js'
import { retire } from '../scheduler/fairshare.js'
import { verifiedOwner } from '../scheduler/membership.js'
import { statusRecordKey } from '../scheduler/hash.js'
import { place, type Placement, type PlacementOptions } from '../scheduler/placement.js'
import { isActive, isEnded, statusUri, type StatusState } from '../scheduler/replica.js'
import type { PublicState, Stored } from '../scheduler/state.js'
import type { RecordChange } from '../sync/ingest.js'
import { BoundedPool } from '../util/pool.js'
import type { SecretBinding } from '../util/x25519.js'
import { replicaSpec } from './replica-spec.js'
import { outcome, statusRecord } from './status-record.js'
import type { WriteBudget } from '../repo/budget.js'

export type { StatusState }

export interface EngineOptions {
  did: string
  state: PublicState
  outbox: Outbox
  logger: Logger
  /** Without a driver, placements are recorded as `scheduled` only. */
  driver?: Driver
  placement?: PlacementOptions
  /** Live room for new replicas (the executor's allocatable). */
  allocatable: () => Resources
  drivers: string[]
  isDraining: () => boolean
  /** Opens a secret sealed to this meshlet's key, for exactly this binding (workload, name, meshlet). */
  openSecret?: (ciphertext: string, binding: SecretBinding) => string
  /** When this daemon came online (its capacity record's onlineSince). */
  onlineSince: () => number
  /** Container starts (image pulls included) under way at once. */
  startConcurrency?: number
  /**
   * The data disk now and the floor under which new work is declined (executor/disk.ts);
   * without it the disk is not checked. A grant's minFreeDiskMiB raises the floor for
   * its recipient's work.
   */
  disk?: () => DiskUsage | undefined
  /** Drain grace after a grant is revoked, per tier, when the grant does not say (default 60 s a, 300 s b and c). */
  drainGraceSeconds?: Partial<Record<Tier, number>>
  now?: () => number
  /** The write points this meshlet may spend (repo/budget.ts); new work is declined before it runs out. */
  budget?: WriteBudget
  /** A container start finished (seconds from the decision, whether it runs): for metrics. */
  onStarted?: (seconds: number, ok: boolean) => void
  /** Appends to the meshlet's audit log (daemon/audit.ts). */
  audit?: (entry: { action: string; target?: string; outcome: string; detail?: Record<string, unknown> }) => void
}

export class PlacementEngine {
  private dirty = new Set<string>()
  /** Workloads whose every replica finished, as last evaluated (markAllDirty skips them). */
  private finished = new Set<string>()
  private running = false
  private timers = new Map<string, NodeJS.Timeout>()
  private closed = false
  /** Replicas with a container here, by replicaKey: started, being started, or adopted. */
  private processes = new Map<string, { uri: string; replica: number; state: 'running' | 'starting' }>()
  private readonly starts: BoundedPool
  /** Writes this meshlet made per workload: the write budget, measured. */
  readonly writesPerWorkload = new Map<string, number>()
  readonly listeners = new Set<(p: Placement) => void>()
  private exitUnsub?: () => void
  /** Grants of this meshlet as last seen, so a deleted one is still known: deleting a grant revokes it with kill. */
  private grantsSeen = new Map<string, Stored<ShareGrantRecord>>()
  /** Deleted grants of this meshlet, as revoked-with-kill records (in memory: a restart forgets them, and the replicas yield instead). */
  private deletedGrants = new Map<string, Stored<ShareGrantRecord>>()

  constructor(private readonly o: EngineOptions) {
    this.starts = new BoundedPool(o.startConcurrency ?? 4)
    this.exitUnsub = o.driver?.onExit((info) => this.onReplicaExit(info))
    for (const uri of o.state.grants.keys()) this.noteGrant(uri, 'put')
  }

  private now(): number {
    return this.o.now?.() ?? Date.now()
  }

  private iso(): string {
    return new Date(this.now()).toISOString()
  }

  /** Feed every state change here. */
  onChange(change: RecordChange): void {
    if (change.collection === COLLECTIONS.shareGrant) this.noteGrant(change.uri, change.action)
    switch (change.collection) {
      case COLLECTIONS.workload:
        this.markDirty(change.uri)
        break
      case COLLECTIONS.bid:
      case COLLECTIONS.workloadStatus: {
        const target = (change.collection === COLLECTIONS.bid ? this.o.state.bids : this.o.state.statuses).get(change.uri)?.record.workload.uri
        if (target) this.markDirty(target)
        else this.markAllDirty()
        break
      }
      case COLLECTIONS.meshlet:
      case COLLECTIONS.meshletOwner:
      case COLLECTIONS.cluster:
      case COLLECTIONS.shareGrant:
        this.markAllDirty({ includeFinished: true })
        break
      default:
        // capacity changed: a candidate set may have changed
        this.markAllDirty()
    }
  }

  private noteGrant(uri: string, action: 'put' | 'delete'): void {
    if (action === 'put') {
      const g = this.o.state.grants.get(uri)
      if (g?.record.meshlet === this.o.did) this.grantsSeen.set(uri, g)
      else this.grantsSeen.delete(uri)
      this.deletedGrants.delete(uri)
      return
    }
    const old = this.grantsSeen.get(uri)
    if (!old) return
    this.grantsSeen.delete(uri)
    const revokedAt = old.record.revokedAt ?? this.iso()
    this.deletedGrants.set(uri, { ...old, record: { ...old.record, revokedAt, onRevoke: 'kill' } })
    this.o.logger.info({ uri, recipient: old.record.recipient }, 'share grant deleted: revoked with kill')
  }

  /**
   * Marks every workload for evaluation, except finished ones: a workload whose replicas all
   * finished cannot be moved by a heartbeat or freed room (finality), so those changes skip
   * it; a record about it still marks it. Membership and grant changes, rare, include it.
   */
  markAllDirty(opts: { includeFinished?: boolean } = {}): void {
    const skip = (uri: string) => !opts.includeFinished && this.finished.has(uri)
    for (const uri of this.o.state.workloads.keys()) if (!skip(uri)) this.dirty.add(uri)
    for (const s of this.ownStatuses()) if (!skip(s.record.workload.uri)) this.dirty.add(s.record.workload.uri)
    for (const p of this.processes.values()) this.dirty.add(p.uri)
    this.kick()
  }

  markDirty(uri: string): void {
    this.dirty.add(uri)
    this.kick()
  }

  /** Starts acting on changes (the daemon calls it once it has published its own heartbeat). */
  start(): void {
    this.started = true
    this.markAllDirty()
  }

  private started = false

  private kick(): void {
    if (this.running || this.closed || !this.started) return
    this.running = true
    // Coalesce a burst of firehose events into one pass.
    setImmediate(() => void this.drain())
  }

  private async drain(): Promise<void> {
    try {
      while (this.dirty.size > 0 && !this.closed) {
        const batch = [...this.dirty].sort()
        this.dirty.clear()
        for (const uri of batch) {
          try {
            await this.evaluate(uri)
          } catch (err) {
            this.o.logger.error({ uri, err: (err as Error).message }, 'placement step failed')
          }
        }
      }
    } finally {
      this.running = false
      if (this.dirty.size > 0 && !this.closed) this.kick()
    }
  }

  private schedule(uri: string, at: number | null): void {
    const old = this.timers.get(uri)
    if (old) clearTimeout(old)
    this.timers.delete(uri)
    if (at === null || this.closed) return
    const t = setTimeout(() => {
      this.timers.delete(uri)
      this.markDirty(uri)
    }, Math.min(2 ** 31 - 1, Math.max(0, at - this.now()) + 5))
    t.unref()
    this.timers.set(uri, t)
  }

  /**
   * Forgets workloads finished here at least `retentionMs` ago, by their last status (see
   * scheduler/fairshare.ts retire: balances stay exact, their records are ignored if they
   * come again). Returns how many left memory.
   */
  retireFinished(retentionMs: number): number {
    let n = 0
    for (const uri of [...this.finished]) {
      const last = Math.max(...this.o.state.statusesFor(uri).map((s) => Date.parse(s.record.updatedAt)))
      if (!(last + retentionMs <= this.now())) continue
      if (retire(this.o.state, uri)) n++
      this.finished.delete(uri)
      this.writesPerWorkload.delete(uri)
      clearTimeout(this.timers.get(uri))
      this.timers.delete(uri)
    }
    return n
  }

  /** The placement as this meshlet sees it now. */
  placement(uri: string): Placement | undefined {
    return place(this.o.state, uri, this.now(), this.o.placement)
  }

  async evaluate(uri: string): Promise<void> {
    const p = this.placement(uri)
    if (p) for (const l of this.listeners) l(p)
    const workload = this.o.state.workloads.get(uri)
    const replicas = this.localReplicas(uri)
    const local = workload ? this.localView(workload, replicas) : { view: { did: this.o.did, room: 0, replicas }, deadline: null }
    this.schedule(uri, earliest(p?.nextDeadline ?? null, local.deadline))
    await this.apply(uri, workload, p, decide(p, local.view))
    const over = p?.phase === 'placed' && p.selected.length > 0 && p.selected.every((a) => a.replicas === 0) && p.nextDeadline === null && local.deadline === null
    if (over && this.localReplicas(uri).every((r) => r.process === 'none' && (!r.status || isEnded(r.status)))) this.finished.add(uri)
    else this.finished.delete(uri)
  }

  /**
   * What this meshlet itself says about taking a workload: its live room, why it takes
   * nothing new (draining, driver, the grant's state and limit, the disk floor), and
   * whether the grant its replicas run under is revoked; plus when that next changes by
   * itself (a revocation taking effect, a drain grace running out).
   */
  private localView(workload: Stored<WorkloadRecord>, replicas: LocalReplica[]): { view: LocalView; deadline: number | null } {
    const w = workload.record
    const now = this.now()
    let room = this.roomFor(w)
    let refuse: string | undefined
    let revoked: LocalView['revoked']
    let deadline: number | null = null
    const terms = this.eligibilityOf(workload, replicas)
    const grant = terms?.eligible && terms.via === 'grant' ? terms.grant : undefined
    if (this.o.isDraining()) refuse = 'draining'
    else if (!this.o.drivers.includes(w.driver ?? 'docker')) refuse = 'driver unavailable'
    if (grant && terms?.eligible) {
      const rev = revocation(grant.record, terms.tier, this.o.drainGraceSeconds)
      if (rev && now >= rev.at) {
        refuse ??= 'share grant revoked'
        revoked = { stop: now >= rev.stopAt, message: rev.message }
        if (!revoked.stop) deadline = rev.stopAt
      } else if (rev) deadline = rev.at
      if (grant.record.paused) refuse ??= 'share grant paused'
      const running = this.jobsUnder(grant.uri)
      refuse ??= grantLimitRefusal(grant.record, running)
      room = Math.max(0, Math.min(room, maxConcurrentJobs(grant.record) - running))
    }
    refuse ??= this.diskRefusal(w, grant?.record)
    refuse ??= this.o.budget?.refusal(this.heldReplicas())
    return { view: { did: this.o.did, room, refuse, ...(revoked ? { revoked } : {}), replicas }, deadline }
  }

  /** Declines new work when free disk minus its storage would fall under the floor (raised by the grant's minFreeDiskMiB). */
  private diskRefusal(w: WorkloadRecord, grant?: ShareGrantRecord): string | undefined {
    const disk = this.o.disk?.()
    if (!disk) return undefined
    return diskFloorRefusal(disk, w.resources.storageMiB ?? 0, grant?.minFreeDiskMiB)
  }

  /**
   * Why this meshlet takes no new work at all now, if it takes none (the capacity
   * record's `declining`): informational, its declines are what count.
   */
  declining(): string | undefined {
    const budget = this.o.budget?.refusal(this.heldReplicas())
    if (budget) return budget
    if (this.o.isDraining()) return 'draining'
    const disk = this.o.disk?.()
    return disk ? diskFloorRefusal(disk, 0) : undefined
  }

  /** The data disk as the capacity record shows it, when it is checked. */
  disk(): DiskUsage | undefined {
    return this.o.disk?.()
  }

  /**
   * Under which terms this meshlet may run a workload (grants.ts), as its own view says:
   * it knows the grants it saw deleted, and it holds what it runs.
   */
  private eligibilityOf(workload: Stored<WorkloadRecord>, replicas = this.localReplicas(workload.uri)): Eligibility | undefined {
    const owner = verifiedOwner(this.o.state, this.o.did)
    if (!owner) return undefined
    const holds = () => replicas.some((r) => r.process !== 'none' || (r.status && isActive(r.status))) || holdsReplica(this.o.state, workload, this.o.did)
    return eligibility(this.o.state, workload, this.o.did, owner, { holds, extraGrants: this.deletedGrants.values() })
  }

  /** Replicas here (offers, running, paused) of workloads that run under this grant. */
  private jobsUnder(grantUri: string): number {
    const live = new Map<string, string>()
    for (const s of this.ownStatuses()) if (!isEnded(s.record)) live.set(replicaKey(s.record.workload.uri, s.record.replica), s.record.workload.uri)
    for (const [key, p] of this.processes) live.set(key, p.uri)
    const under = new Map<string, boolean>()
    let n = 0
    for (const uri of live.values()) {
      if (!under.has(uri)) {
        const w = this.o.state.workloads.get(uri)
        const e = w ? this.eligibilityOf(w) : undefined
        under.set(uri, !!e?.eligible && e.via === 'grant' && e.grant.uri === grantUri)
      }
      if (under.get(uri)) n++
    }
    return n
  }

  /** What this meshlet knows of its own replicas of a workload: statuses and processes. */
  private localReplicas(uri: string): LocalReplica[] {
    const out = new Map<number, LocalReplica>()
    // without a driver nothing runs here but the record: an active status is all there is
    const bare = (r: WorkloadStatusRecord) => (!this.o.driver && isActive(r) ? 'running' : 'none')
    for (const s of this.ownStatuses(uri)) out.set(s.record.replica, { replica: s.record.replica, status: s.record, process: bare(s.record) })
    for (const p of this.processes.values()) {
      if (p.uri !== uri) continue
      const r = out.get(p.replica) ?? { replica: p.replica, process: 'none' }
      out.set(p.replica, { ...r, process: p.state })
    }
    return [...out.values()].sort((a, b) => a.replica - b.replica)
  }

  private async apply(uri: string, workload: Stored<WorkloadRecord> | undefined, p: Placement | undefined, d: Decision): Promise<void> {
    if (d.answer && workload && p) {
      const a = d.answer
      const bid: RecordTypes['commune.scheduler.bid'] = {
        $type: COLLECTIONS.bid,
        workload: { uri: workload.uri, cid: workload.cid },
        round: a.round,
        score: a.score,
        ...(a.slots > 1 ? { slots: a.slots } : {}),
        ...(a.accept ? {} : { decline: true, reason: a.reason }),
        createdAt: this.iso(),
      }
      // An offer's `scheduled` status rides in the bid's commit: one write per replica in the common case.
      this.write([
        { collection: COLLECTIONS.bid, rkey: Outbox.newKey(), record: bid },
        ...a.scheduled.map((i) => this.statusWrite({ uri: workload.uri, cid: workload.cid }, i, 'scheduled', { round: a.round })),
      ])
      this.o.logger.debug({ uri, round: a.round, accept: a.accept, reason: a.reason }, 'answered')
    }
    let freed = false
    for (const s of d.stop) {
      const key = replicaKey(uri, s.replica)
      if (this.processes.get(key)?.state === 'starting') continue // stopped once its start is over
      const info = await this.o.driver?.stop(uri, s.replica).catch(() => undefined)
      if (this.processes.delete(key)) freed = true
      const prev = this.statusOf(uri, s.replica)
      if (!prev || isEnded(prev)) continue
      freed = true
      this.write([
        this.statusWrite(prev.workload, s.replica, s.state, {
          message: s.message,
          finishedAt: this.iso(),
          ...(info?.cpuMillis !== undefined ? { cpuMillis: Math.max(0, Math.round(info.cpuMillis)) } : {}),
          ...(info?.memoryPeakBytes !== undefined ? { memoryPeakBytes: Math.max(0, Math.round(info.memoryPeakBytes)) } : {}),
        }),
      ])
      this.o.logger.info({ uri, replica: s.replica, state: s.state, why: s.message }, 'replica stopped')
      // a stop the meshlet decided on its own (a revoked grant, a deleted workload) is a control action
      if (s.state === 'stopped') this.o.audit?.({ action: 'replica.stop', target: `${uri}#${s.replica}`, outcome: 'ok', detail: { why: s.message } })
    }
    // room freed (a grant's job slot too): queued workloads may now take an offer from us
    if (freed) this.markAllDirty()
    if (!workload || !p) return
    for (const c of d.cannotRun) {
      // whatever the engine believed, nothing of it may run on here once it is reported gone
      await this.o.driver?.stop(uri, c.replica).catch(() => undefined)
      this.write([this.statusWrite({ uri: workload.uri, cid: workload.cid }, c.replica, 'failed', { message: `could not run: ${c.message}`, finishedAt: this.iso() })])
      this.o.logger.warn({ uri, replica: c.replica, why: c.message }, 'cannot run a selected replica; reported so it moves elsewhere')
    }
    for (const i of d.start) this.startReplica(workload, p, i)
  }

  private startReplica(workload: Stored<WorkloadRecord>, p: Placement, replica: number): void {
    const ref = { uri: workload.uri, cid: workload.cid }
    const round = p.selected.find((s) => s.meshlet === this.o.did)?.round ?? p.round
    if (!this.o.driver) {
      if (this.statusOf(workload.uri, replica)?.state !== 'scheduled') this.write([this.statusWrite(ref, replica, 'scheduled', { round })])
      return
    }
    const key = replicaKey(workload.uri, replica)
    this.processes.set(key, { uri: workload.uri, replica, state: 'starting' })
    const spec = this.specFor(workload, replica)
    const decidedAt = performance.now()
    void this.starts.run(async () => {
      // not `...spec`: it carries the opened secrets
      const info = await this.o.driver!.start(spec).catch((err: Error): ReplicaInfo => ({ workloadUri: spec.workloadUri, replica: spec.replica, meshletDid: spec.meshletDid, id: '', state: 'failed', message: err.message }))
      this.o.onStarted?.((performance.now() - decidedAt) / 1000, info.state !== 'failed')
      if (this.closed) return
      if (info.state === 'failed') {
        this.processes.delete(key)
        // could not run (no exit code): the placement moves the replica elsewhere at once
        this.write([this.statusWrite(ref, replica, 'failed', { round, message: (info.message ?? 'could not start').slice(0, 1000), finishedAt: this.iso() })])
      } else if (info.state === 'exited') {
        this.processes.delete(key)
        this.write([this.finishedWrite(ref, info)])
        void this.o.driver?.release(workload.uri, replica).catch(() => undefined)
      } else {
        this.processes.set(key, { uri: workload.uri, replica, state: 'running' })
        this.write([this.statusWrite(ref, replica, 'running', { round, startedAt: info.startedAt ?? this.iso() })])
        this.o.logger.info({ uri: workload.uri, replica }, 'replica running')
      }
      this.markDirty(workload.uri)
    })
  }

  /** Queues writes in the outbox and believes them at once. */
  private write(writes: { collection: Collection; rkey: string; record: RecordTypes[Collection] }[]): void {
    if (writes.length === 0) return
    this.o.outbox.enqueue(writes)
    for (const w of writes) this.believe(w.collection, w.rkey, w.record, '')
  }

  /** Our own records, as written or queued: the placement must see them before their firehose echo. */
  believe(collection: Collection, rkey: string, record: RecordTypes[Collection], cid: string): void {
    const uri = `at://${this.o.did}/${collection}/${rkey}`
    const known = collection === COLLECTIONS.workloadStatus ? this.o.state.statuses.get(uri) : collection === COLLECTIONS.bid ? this.o.state.bids.get(uri) : undefined
    // an echo must not overwrite a newer queued version with an older one
    if (known && !cid && JSON.stringify(known.record) === JSON.stringify(record)) return
    this.o.state.put(collection, { uri, cid: cid || `pending:${JSON.stringify(record).length}:${this.now()}`, did: this.o.did, rkey, record: record as never })
  }

  /**
   * Whether a firehose copy of one of our own statuses is older than the version we
   * believe (written or queued since): applying it would undo a newer state.
   */
  isStaleEcho(collection: Collection, stored: Stored<unknown>): boolean {
    if (stored.did !== this.o.did || collection !== COLLECTIONS.workloadStatus) return false
    const known = this.o.state.statuses.get(stored.uri)?.record
    const incoming = stored.record as WorkloadStatusRecord
    return !!known && Date.parse(known.updatedAt) > Date.parse(incoming.updatedAt)
  }

  /** The PDS took a batch: count it against the write budget. */
  written(entries: OutboxEntry[]): void {
    for (const e of entries) {
      const target = (e.record as { workload?: { uri: string } }).workload?.uri
      if (target) this.writesPerWorkload.set(target, (this.writesPerWorkload.get(target) ?? 0) + 1)
      // Our offer is in our repo now: look again at once instead of waiting for its firehose
      // echo, so a meshlet first in the ranking starts a hop sooner (and only once its offer
      // is durable where everyone reads it).
      if (target && e.collection === COLLECTIONS.bid && !(e.record as { decline?: boolean }).decline) this.markDirty(target)
    }
  }

  private ownStatuses(uri?: string): Stored<WorkloadStatusRecord>[] {
    const all = uri ? this.o.state.statusesFor(uri) : [...this.o.state.statuses.values()]
    return all.filter((s) => s.did === this.o.did)
  }

  private statusOf(uri: string, replica: number): WorkloadStatusRecord | undefined {
    return this.o.state.statuses.get(statusUri(this.o.did, uri, replica))?.record
  }

  private statusWrite(
    workload: { uri: string; cid: string },
    replica: number,
    state: StatusState,
    extra: Partial<WorkloadStatusRecord> = {},
  ): { collection: Collection; rkey: string; record: WorkloadStatusRecord } {
    const record = statusRecord(this.statusOf(workload.uri, replica), workload, replica, state, extra, this.iso())
    return { collection: COLLECTIONS.workloadStatus, rkey: statusRecordKey(workload.uri, replica), record }
  }

  /** How many replicas of this workload fit in the live allocatable now. */
  private roomFor(w: WorkloadRecord): number {
    const a = this.o.allocatable()
    const need = w.resources
    let n = Math.min(Math.floor(a.cpuMillis / need.cpuMillis), Math.floor(a.memoryMiB / need.memoryMiB))
    if ((need.gpus ?? 0) > 0) n = Math.min(n, Math.floor((a.gpus ?? 0) / need.gpus!))
    return Math.max(0, Math.min(n, w.allowPacking ? w.replicas : 1))
  }

  /**
   * The driver's spec. The tier is the one the core allowed here (never merely the one the
   * workload claims), the wall time the workload's own capped by its grant's maxJobSeconds.
   */
  private specFor(workload: Stored<WorkloadRecord>, replica: number): ReplicaSpec {
    const spec = replicaSpec(workload, replica, this.o.did, (name, ciphertext, binding) => {
      try {
        return this.o.openSecret?.(ciphertext, binding)
      } catch {
        this.o.logger.warn({ name }, 'a sealed secret did not open with our key; left out')
        return undefined
      }
    })
    const terms = this.eligibilityOf(workload)
    const grant = terms?.eligible && terms.via === 'grant' ? terms.grant.record : undefined
    const timeoutSeconds = jobTimeoutSeconds(workload.record, grant)
    return { ...spec, tier: terms?.eligible ? terms.tier : 'a', ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }
  }

  private finishedWrite(workload: { uri: string; cid: string }, info: ReplicaInfo) {
    const { state, extra } = outcome(info, this.iso())
    return this.statusWrite(workload, info.replica, state, extra)
  }

  private onReplicaExit(info: ReplicaInfo): void {
    if (info.meshletDid !== this.o.did || this.closed) return
    this.processes.delete(replicaKey(info.workloadUri, info.replica))
    const prev = this.statusOf(info.workloadUri, info.replica)
    if (!prev || isEnded(prev)) return
    this.write([this.finishedWrite(prev.workload, info)])
    // the outcome is queued (so reconciliation will not restart it): free the container
    void this.o.driver?.release(info.workloadUri, info.replica).catch(() => undefined)
    this.o.logger.info({ uri: info.workloadUri, replica: info.replica, exitCode: info.exitCode }, 'replica finished')
    // room freed: queued workloads may now take an offer from us
    this.markAllDirty()
  }

  /**
   * Matches what runs here (containers carrying our label) with what the engine tracks:
   * adopts containers of replicas this meshlet has not ended, records outcomes of those
   * that finished while nobody watched, removes orphans, and forgets containers that
   * vanished. Then every workload is evaluated, which stops what the placement does not
   * give us and starts what it does.
   */
  async reconcile(): Promise<{ adopted: number; removed: number; vanished: number }> {
    const driver = this.o.driver
    if (!driver) return { adopted: 0, removed: 0, vanished: 0 }
    return this.exclusive(async () => {
      // Only a container tracked as running before the listing can have vanished: a start
      // that completes while the listing runs is not in it, and is not gone.
      const runningBefore = new Set([...this.processes].filter(([, p]) => p.state === 'running').map(([key]) => key))
      const r = await reconcile(
        driver,
        this.o.did,
        (f) => {
          const workload = this.o.state.workloads.get(f.workloadUri)
          const status = this.statusOf(f.workloadUri, f.replica)
          return workload && status && !isEnded(status) ? this.specFor(workload, f.replica) : undefined
        },
        (f) => this.processes.get(replicaKey(f.workloadUri, f.replica))?.state === 'starting',
      )
      for (const info of r.finished) this.onReplicaExit(info.state === 'failed' ? { ...info, state: 'exited', exitCode: info.exitCode ?? -1 } : info)
      const seen = new Set([...r.adopted, ...r.finished].map((i) => replicaKey(i.workloadUri, i.replica)))
      for (const info of r.adopted) {
        const key = replicaKey(info.workloadUri, info.replica)
        if (this.processes.has(key)) continue
        this.processes.set(key, { uri: info.workloadUri, replica: info.replica, state: 'running' })
        // Re-asserted after a restart (a running status older than this daemon's onlineSince
        // holds nothing), or started just before a crash, before its `running` was recorded.
        const status = this.statusOf(info.workloadUri, info.replica)
        if (status?.state === 'scheduled') this.write([this.statusWrite(status.workload, info.replica, 'running', { startedAt: info.startedAt ?? this.iso() })])
        else if (status && isActive(status) && Date.parse(status.updatedAt) < this.o.onlineSince()) this.write([this.statusWrite(status.workload, info.replica, status.state as StatusState)])
      }
      let vanished = 0
      for (const [key, p] of this.processes) {
        if (p.state === 'running' && runningBefore.has(key) && !seen.has(key)) {
          this.processes.delete(key)
          vanished++
        }
      }
      this.markAllDirty()
      return { adopted: r.adopted.length, removed: r.removed.length, vanished }
    })
  }

  /** Replicas of ours not yet ended: each still owes its status updates. */
  private heldReplicas(): number {
    let n = 0
    for (const s of this.ownStatuses()) if (!isEnded(s.record)) n++
    return n
  }

  /** Resources held by replicas that have not ended (offers included: an offer reserves its room). */
  held(): Resources {
    const r = { cpuMillis: 0, memoryMiB: 0, storageMiB: 0, gpus: 0 }
    const counted = new Set<string>()
    const add = (uri: string, replica: number) => {
      const key = replicaKey(uri, replica)
      const w = this.o.state.workloads.get(uri)?.record
      if (!w || counted.has(key)) return
      counted.add(key)
      r.cpuMillis += w.resources.cpuMillis
      r.memoryMiB += w.resources.memoryMiB
      r.storageMiB += w.resources.storageMiB ?? 0
      r.gpus += w.resources.gpus ?? 0
    }
    for (const s of this.ownStatuses()) if (!isEnded(s.record)) add(s.record.workload.uri, s.record.replica)
    for (const p of this.processes.values()) add(p.uri, p.replica)
    return r
  }

  /** Stops a workload's replicas here on request (XRPC deleteWorkload): final, never re-placed. */
  async stopWorkload(uri: string, message: string): Promise<void> {
    await this.exclusive(() => this.apply(uri, undefined, undefined, { start: [], cannotRun: [], stop: this.localReplicas(uri).map((r) => ({ replica: r.replica, state: 'stopped', message })) }))
    await this.o.outbox.flush()
  }

  /** Records a pause or resume of local replicas. */
  async setPaused(uri: string, paused: boolean): Promise<void> {
    for (const s of this.ownStatuses(uri)) {
      if (isEnded(s.record)) continue
      if (paused) await this.o.driver?.pause?.(uri, s.record.replica)
      else await this.o.driver?.resume?.(uri, s.record.replica)
      this.write([this.statusWrite(s.record.workload, s.record.replica, paused ? 'paused' : 'running')])
    }
    await this.o.outbox.flush()
  }

  /** Runs fn while no placement step runs. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running) await new Promise((r) => setTimeout(r, 10))
    this.running = true
    try {
      return await fn()
    } finally {
      this.running = false
      if (this.dirty.size > 0) this.kick()
    }
  }

  /** Resolves when no placement step runs, no start is under way and nothing waits to be written. */
  async idle(): Promise<void> {
    for (;;) {
      while (this.running || this.dirty.size > 0 || this.starts.busy) await new Promise((r) => setTimeout(r, 10))
      await this.o.outbox.drained()
      if (!this.running && this.dirty.size === 0 && !this.starts.busy) return
    }
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.exitUnsub?.()
    while (this.running) await new Promise((r) => setTimeout(r, 10))
    await this.starts.idle()
  }
}

function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b)
}
