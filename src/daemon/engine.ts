// The placement engine: the shell around the pure core. It watches the public state,
// answers when invited (bid or decline), runs what the agreed placement gives this
// meshlet, yields what it no longer gives, and records each replica's status.
//
// Writes due at the same moment go out in one applyWrites commit; a bid that is
// certain to win carries its `scheduled` status in the same commit.
import type { Logger } from 'pino'
import type { Driver, ReplicaInfo, ReplicaSpec } from '../executor/types.js'
import { COLLECTIONS, type Resources, type WorkloadRecord, type WorkloadStatusRecord } from '../records/index.js'
import type { RepoWriter, Write } from '../repo/writer.js'
import { statusRecordKey } from '../scheduler/hash.js'
import { place, type Placement, type PlacementOptions } from '../scheduler/placement.js'
import type { PublicState, Stored } from '../scheduler/state.js'
import type { RecordChange } from '../sync/ingest.js'
import { nowIso } from '../util/time.js'

export type StatusState = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'stopped' | 'yielded' | 'paused'
const FINISHED: ReadonlySet<string> = new Set(['succeeded', 'failed', 'stopped', 'yielded'])

export interface EngineOptions {
  did: string
  state: PublicState
  writer: RepoWriter
  logger: Logger
  /** Without a driver, placements are recorded as `scheduled` only. */
  driver?: Driver
  placement?: PlacementOptions
  /** Live room for new replicas (the executor's allocatable). */
  allocatable: () => Resources
  drivers: string[]
  isDraining: () => boolean
  /** Opens a secret sealed to this meshlet's key. */
  openSecret?: (ciphertext: string) => string
  now?: () => number
}

export class PlacementEngine {
  private dirty = new Set<string>()
  private running = false
  private timers = new Map<string, NodeJS.Timeout>()
  private pending: Write[] = []
  private closed = false
  /** Writes this meshlet made per workload: the write budget, measured. */
  readonly writesPerWorkload = new Map<string, number>()
  readonly listeners = new Set<(p: Placement) => void>()
  private exitUnsub?: () => void

  constructor(private readonly o: EngineOptions) {
    this.exitUnsub = o.driver?.onExit((info) => this.onReplicaExit(info))
  }

  private now(): number {
    return this.o.now?.() ?? Date.now()
  }

  /** Feed every state change here. */
  onChange(change: RecordChange): void {
    switch (change.collection) {
      case COLLECTIONS.workload:
        this.markDirty(change.uri)
        break
      case COLLECTIONS.bid: {
        const bid = this.o.state.bids.get(change.uri)
        if (bid) this.markDirty(bid.record.workload.uri)
        else this.markAllDirty()
        break
      }
      case COLLECTIONS.workloadStatus:
        break
      default:
        // membership, capacity or grants changed: any candidate set may have changed
        this.markAllDirty()
    }
  }

  markAllDirty(): void {
    for (const uri of this.o.state.workloads.keys()) this.dirty.add(uri)
    for (const s of this.ownStatuses()) this.dirty.add(s.record.workload.uri)
    this.kick()
  }

  markDirty(uri: string): void {
    this.dirty.add(uri)
    this.kick()
  }

  private kick(): void {
    if (this.running || this.closed) return
    this.running = true
    // Coalesce a burst of firehose events into one pass.
    setImmediate(() => void this.drain())
  }

  /** Processes dirty workloads until none are left; one applyWrites per pass. */
  private async drain(): Promise<void> {
    try {
      while ((this.dirty.size > 0 || this.pending.length > 0) && !this.closed) {
        const batch = [...this.dirty].sort()
        this.dirty.clear()
        for (const uri of batch) {
          try {
            await this.evaluate(uri)
          } catch (err) {
            this.o.logger.error({ uri, err: (err as Error).message }, 'placement step failed')
          }
        }
        await this.flush()
      }
    } finally {
      this.running = false
      if (this.dirty.size > 0 && !this.closed) this.kick()
    }
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return
    const writes = this.pending
    this.pending = []
    try {
      const results = await this.o.writer.applyWrites(writes)
      // Believe our own writes at once rather than waiting for their firehose echo.
      writes.forEach((w, i) => {
        if (w.op === 'delete') return
        const rkey = results[i].uri.split('/').pop()!
        this.o.state.put(w.collection, { uri: results[i].uri, cid: results[i].cid ?? '', did: this.o.did, rkey, record: w.record as never })
        const target = (w.record as { workload?: { uri: string } }).workload?.uri
        if (!target) return
        this.writesPerWorkload.set(target, (this.writesPerWorkload.get(target) ?? 0) + 1)
        // our answer is in: look again (start, or wait for the others)
        if (w.collection === COLLECTIONS.bid) this.dirty.add(target)
      })
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message, n: writes.length }, 'write failed; will retry on next change')
      for (const w of writes) {
        const target = (w as { record?: { workload?: { uri: string } } }).record?.workload?.uri
        if (target) this.dirty.add(target)
      }
    }
  }

  private ownStatuses(uri?: string): Stored<WorkloadStatusRecord>[] {
    const all = uri ? this.o.state.statusesFor(uri) : [...this.o.state.statuses.values()]
    return all.filter((s) => s.did === this.o.did)
  }

  private schedule(uri: string, at: number | null): void {
    const old = this.timers.get(uri)
    if (old) clearTimeout(old)
    this.timers.delete(uri)
    if (at === null || this.closed) return
    const t = setTimeout(() => {
      this.timers.delete(uri)
      this.markDirty(uri)
    }, Math.max(0, at - this.now()) + 5)
    t.unref()
    this.timers.set(uri, t)
  }

  async evaluate(uri: string): Promise<void> {
    const workload = this.o.state.workloads.get(uri)
    if (!workload) {
      this.schedule(uri, null)
      await this.retire(uri, undefined, 'stopped', 'workload record deleted by its owner')
      return
    }
    const p = place(this.o.state, uri, this.now(), this.o.placement)
    if (!p) return
    this.schedule(uri, p.nextDeadline)
    for (const l of this.listeners) l(p)

    const me = p.candidates.find((c) => c.did === this.o.did)
    const answered = this.o.state.bidsFor(uri).some((b) => b.did === this.o.did && b.record.round === p.round && b.record.workload.cid === p.workload.cid)
    if (me && !answered && p.invited.includes(this.o.did) && !this.pendingBid(uri)) {
      this.answer(workload, p, me.score, me.slots)
      return // the rest happens when our bid is in the state
    }

    const mine = p.selected.find((s) => s.meshlet === this.o.did)
    const sure = p.closed || p.confirmed.includes(this.o.did)
    if (mine && sure) await this.runReplicas(workload, p, mine.replicas)
    else if (p.closed) await this.retire(uri, p, 'yielded', 'another meshlet was selected')
  }

  /**
   * Queues a status write. A later write for the same replica replaces an earlier one in
   * the same batch, except that a finished state is never overwritten by an unfinished
   * one (a fast replica can exit before its 'running' is written).
   */
  private enqueue(w: Write): void {
    if (w.op !== 'put') return void this.pending.push(w)
    const i = this.pending.findIndex((p) => p.op === 'put' && p.collection === w.collection && p.rkey === w.rkey)
    if (i < 0) return void this.pending.push(w)
    const before = (this.pending[i] as { record: { state?: string } }).record.state ?? ''
    const after = (w.record as { state?: string }).state ?? ''
    if (FINISHED.has(before) && !FINISHED.has(after)) return
    this.pending[i] = w
  }

  private pendingBid(uri: string): boolean {
    return this.pending.some((w) => w.collection === COLLECTIONS.bid && w.op !== 'delete' && (w.record as { workload: { uri: string } }).workload.uri === uri)
  }

  private answer(workload: Stored<WorkloadRecord>, p: Placement, score: number, maxSlots_: number): void {
    const room = this.roomFor(workload.record)
    const declineReason =
      this.o.isDraining() ? 'draining' : !this.o.drivers.includes(workload.record.driver ?? 'docker') ? 'driver unavailable' : room === 0 ? 'no room' : undefined
    const slots = declineReason ? 0 : Math.min(room, maxSlots_)
    this.pending.push({
      op: 'create',
      collection: COLLECTIONS.bid,
      record: {
        $type: COLLECTIONS.bid,
        workload: { uri: workload.uri, cid: workload.cid },
        round: p.round,
        score,
        ...(slots > 1 ? { slots } : {}),
        ...(declineReason ? { decline: true, reason: declineReason } : {}),
        createdAt: nowIso(),
      },
    })
    // Invitees are the likely winners, so the `scheduled` status rides in the bid's commit:
    // one write per replica in the common case. A bidder that ends up not selected writes
    // `yielded` later, which is rarer than paying a second commit every time.
    if (!declineReason) {
      const taken = p.selected.reduce((n, s) => n + s.replicas, 0)
      const n = Math.max(1, Math.min(slots, p.wanted - taken))
      for (let i = 0; i < n; i++) this.enqueue(this.statusWrite(workload, p, i, 'scheduled'))
    }
  }

  /** How many replicas of this workload fit in the live allocatable now. */
  private roomFor(w: WorkloadRecord): number {
    const a = this.o.allocatable()
    const need = w.resources
    let n = Math.min(Math.floor(a.cpuMillis / need.cpuMillis), Math.floor(a.memoryMiB / need.memoryMiB))
    if ((need.gpus ?? 0) > 0) n = Math.min(n, Math.floor((a.gpus ?? 0) / need.gpus!))
    return Math.max(0, Math.min(n, w.allowPacking ? w.replicas : 1))
  }

  private statusWrite(
    workload: Stored<WorkloadRecord>,
    p: Placement | undefined,
    replica: number,
    state: StatusState,
    extra: Partial<WorkloadStatusRecord> = {},
  ): Write {
    const rkey = statusRecordKey(workload.uri, replica)
    const prev = this.o.state.statuses.get(`at://${this.o.did}/${COLLECTIONS.workloadStatus}/${rkey}`)?.record
    const record: WorkloadStatusRecord = {
      ...(prev ?? {}),
      $type: COLLECTIONS.workloadStatus,
      workload: { uri: workload.uri, cid: workload.cid },
      replica,
      round: p?.round ?? prev?.round ?? 0,
      state,
      ...(p?.closed && p.placed < p.wanted ? { placed: p.placed } : {}),
      ...extra,
      updatedAt: nowIso(),
    }
    return { op: 'put', collection: COLLECTIONS.workloadStatus, rkey, record }
  }

  private statusOf(uri: string, replica: number): WorkloadStatusRecord | undefined {
    return this.o.state.statuses.get(`at://${this.o.did}/${COLLECTIONS.workloadStatus}/${statusRecordKey(uri, replica)}`)?.record
  }

  private queued(uri: string, replica: number): Write | undefined {
    const rkey = statusRecordKey(uri, replica)
    return this.pending.find((w) => w.collection === COLLECTIONS.workloadStatus && w.op === 'put' && w.rkey === rkey)
  }

  private async runReplicas(workload: Stored<WorkloadRecord>, p: Placement, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const st = this.statusOf(workload.uri, i)
      if (this.queued(workload.uri, i)) continue
      // a partial placement says so in the status (a full one costs no extra write)
      if (p.closed && p.placed < p.wanted && st && st.placed !== p.placed && !FINISHED.has(st.state)) {
        this.enqueue(this.statusWrite(workload, p, i, st.state as StatusState))
        continue
      }
      // started before, or finished: never twice. A yielded replica was stopped only because
      // another meshlet was selected; selected again, it starts again.
      if (st && st.workload.cid === workload.cid && st.state !== 'scheduled' && st.state !== 'yielded') continue
      if (!this.o.driver) {
        if (!st) this.enqueue(this.statusWrite(workload, p, i, 'scheduled'))
        continue
      }
      const info = await this.o.driver.start(this.specFor(workload, i))
      if (info.state === 'failed') {
        this.enqueue(this.statusWrite(workload, p, i, 'failed', { message: info.message?.slice(0, 1000), finishedAt: nowIso(), exitCode: info.exitCode }))
      } else if (info.state === 'exited') {
        this.enqueue(this.finishedWrite(workload, info))
      } else {
        this.enqueue(this.statusWrite(workload, p, i, 'running', { startedAt: info.startedAt ?? nowIso() }))
      }
    }
    // packing shrank: yield the extras
    for (const s of this.ownStatuses(workload.uri)) {
      if (s.record.replica >= count && !FINISHED.has(s.record.state)) {
        await this.stopReplica(workload.uri, s.record.replica, 'yielded', 'no longer selected')
      }
    }
  }

  private specFor(workload: Stored<WorkloadRecord>, replica: number): ReplicaSpec {
    const w = workload.record
    return {
      workloadUri: workload.uri,
      replica,
      meshletDid: this.o.did,
      image: w.image,
      command: w.command,
      env: { ...Object.fromEntries((w.env ?? []).map((e) => [e.name, e.value])), ...this.openSecrets(w) },
      cpuMillis: w.resources.cpuMillis,
      memoryMiB: w.resources.memoryMiB,
      storageMiB: w.resources.storageMiB,
      gpus: w.resources.gpus,
      tier: (w.tier as ReplicaSpec['tier']) ?? 'a',
      timeoutSeconds: w.timeoutSeconds,
    }
  }

  private openSecrets(w: WorkloadRecord): Record<string, string> {
    const out: Record<string, string> = {}
    for (const s of w.secrets ?? []) {
      if (s.meshlet !== this.o.did || !this.o.openSecret) continue
      try {
        out[s.name] = this.o.openSecret(s.ciphertext)
      } catch {
        this.o.logger.warn({ name: s.name }, 'a sealed secret did not open with our key; left out')
      }
    }
    return out
  }

  /** Stops every unfinished local replica of a workload and records why. */
  private async retire(uri: string, p: Placement | undefined, state: 'stopped' | 'yielded', message: string): Promise<void> {
    for (const s of this.ownStatuses(uri)) {
      if (FINISHED.has(s.record.state) || this.queued(uri, s.record.replica)) continue
      await this.stopReplica(uri, s.record.replica, state, message, p)
    }
  }

  private async stopReplica(uri: string, replica: number, state: 'stopped' | 'yielded', message: string, p?: Placement): Promise<void> {
    const info = await this.o.driver?.stop(uri, replica)
    const prev = this.statusOf(uri, replica)
    if (!prev) return
    const workload = { uri, cid: prev.workload.cid } as Stored<WorkloadRecord>
    this.enqueue(
      this.statusWrite(workload, p, replica, state, {
        message,
        finishedAt: nowIso(),
        ...(info?.cpuMillis !== undefined ? { cpuMillis: info.cpuMillis } : {}),
        ...(info?.memoryPeakBytes !== undefined ? { memoryPeakBytes: info.memoryPeakBytes } : {}),
      }),
    )
    this.o.logger.info({ uri, replica, state }, 'replica stopped')
  }

  private finishedWrite(workload: Stored<WorkloadRecord> | { uri: string; cid: string }, info: ReplicaInfo): Write {
    const ok = info.state === 'exited' && info.exitCode === 0
    return this.statusWrite(workload as Stored<WorkloadRecord>, undefined, info.replica, ok ? 'succeeded' : 'failed', {
      exitCode: clampExit(info.exitCode),
      cpuMillis: Math.max(0, Math.round(info.cpuMillis ?? 0)),
      memoryPeakBytes: Math.max(0, Math.round(info.memoryPeakBytes ?? 0)),
      finishedAt: info.finishedAt ?? nowIso(),
      ...(info.message ? { message: info.message.slice(0, 1000) } : {}),
    })
  }

  /** Records a replica that finished by itself (also for exits found at reconciliation). */
  recordExit(info: ReplicaInfo): void {
    this.onReplicaExit(info)
  }

  private onReplicaExit(info: ReplicaInfo): void {
    if (info.meshletDid !== this.o.did || this.closed) return
    const prev = this.statusOf(info.workloadUri, info.replica)
    const queued = this.queued(info.workloadUri, info.replica)
    if (!prev && !queued) return
    if (prev && FINISHED.has(prev.state)) return
    const cid = prev?.workload.cid ?? ((queued as { record: WorkloadStatusRecord }).record.workload.cid)
    this.enqueue(this.finishedWrite({ uri: info.workloadUri, cid }, info))
    // the outcome is queued (so reconciliation will not restart it): free the container
    void this.o.driver?.release(info.workloadUri, info.replica).catch(() => undefined)
    this.o.logger.info({ uri: info.workloadUri, replica: info.replica, exitCode: info.exitCode }, 'replica finished')
    if (!this.running) {
      this.running = true
      void this.flush().finally(() => {
        this.running = false
        if (this.dirty.size > 0) this.kick()
      })
    }
  }

  /** Replicas this meshlet should be running now (for reconciliation after a restart). */
  desiredReplicas(): ReplicaSpec[] {
    const out: ReplicaSpec[] = []
    for (const s of this.ownStatuses()) {
      const w = this.o.state.workloads.get(s.record.workload.uri)
      if (!w || FINISHED.has(s.record.state) || s.record.state === 'scheduled' || this.queued(w.uri, s.record.replica)) continue
      out.push(this.specFor(w, s.record.replica))
    }
    return out
  }

  /** Resources held by replicas that have not finished. */
  held(): Resources {
    const r = { cpuMillis: 0, memoryMiB: 0, storageMiB: 0, gpus: 0 }
    for (const s of this.ownStatuses()) {
      if (FINISHED.has(s.record.state)) continue
      const w = this.o.state.workloads.get(s.record.workload.uri)?.record
      if (!w) continue
      r.cpuMillis += w.resources.cpuMillis
      r.memoryMiB += w.resources.memoryMiB
      r.storageMiB += w.resources.storageMiB ?? 0
      r.gpus += w.resources.gpus ?? 0
    }
    return r
  }

  /** Stops a workload's replicas here on request (XRPC deleteWorkload). */
  async stopWorkload(uri: string, message: string): Promise<void> {
    await this.retire(uri, undefined, 'stopped', message)
    await this.flush()
  }

  /** Records a pause or resume of local replicas. */
  async setPaused(uri: string, paused: boolean): Promise<void> {
    for (const s of this.ownStatuses(uri)) {
      if (FINISHED.has(s.record.state)) continue
      if (paused) await this.o.driver?.pause?.(uri, s.record.replica)
      else await this.o.driver?.resume?.(uri, s.record.replica)
      const w = { uri, cid: s.record.workload.cid } as Stored<WorkloadRecord>
      this.enqueue(this.statusWrite(w, undefined, s.record.replica, paused ? 'paused' : 'running'))
    }
    await this.flush()
  }

  /**
   * Runs fn while no placement step runs (e.g. reconciliation, which must not see a
   * container the engine is starting as an orphan).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running) await new Promise((r) => setTimeout(r, 10))
    this.running = true
    try {
      return await fn()
    } finally {
      this.running = false
      if (this.dirty.size > 0 || this.pending.length > 0) this.kick()
    }
  }

  async idle(): Promise<void> {
    while (this.running || this.dirty.size > 0) await new Promise((r) => setTimeout(r, 10))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.exitUnsub?.()
    while (this.running) await new Promise((r) => setTimeout(r, 10))
    await this.flush()
  }
}

function clampExit(code: number | undefined): number {
  if (code === undefined || !Number.isFinite(code)) return -1
  return Math.max(-1, Math.min(255, Math.trunc(code)))
}

