// What the appview says about a workload, as pure functions of the public records, the
// placement that every meshlet computes from them (place()), and the status versions the
// appview saw go by. No I/O, no clock: `now` comes in with the placement.
import type { AnswerView, PlacementView, ReplicaView, TimelineEvent, WorkloadView } from '../lexicon/types/commune/appview/defs.js'
import type { WorkloadRecord, WorkloadStatusRecord } from '../records/index.js'
import type { Placement } from '../scheduler/placement.js'
import { isActive, isFinal } from '../scheduler/replica.js'
import type { PublicState, Stored } from '../scheduler/state.js'
import type { HistoryRow } from './store.js'

export const WORKLOAD_STATES = ['pending', 'queued', 'running', 'succeeded', 'failed', 'stopped'] as const
export type WorkloadState = (typeof WORKLOAD_STATES)[number]

/** A signed datetime as toISOString(), so that text order is time order (undefined if it does not parse). */
export function isoOf(datetime: string | undefined): string | undefined {
  if (!datetime) return undefined
  const t = Date.parse(datetime)
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined
}

/** Status records about this version of the workload, by meshlet then replica. */
export function currentStatuses(state: PublicState, w: Stored<WorkloadRecord>): Stored<WorkloadStatusRecord>[] {
  return state
    .statusesFor(w.uri)
    .filter((s) => s.record.workload.cid === w.cid)
    .sort((a, b) => cmp(a.did, b.did) || a.record.replica - b.record.replica || cmp(a.uri, b.uri))
}

export function replicaView(s: Stored<WorkloadStatusRecord>): ReplicaView {
  const r = s.record
  return {
    uri: s.uri,
    meshlet: s.did,
    replica: r.replica,
    state: r.state,
    ...(r.round !== undefined ? { round: r.round } : {}),
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.cpuMillis !== undefined ? { cpuMillis: r.cpuMillis } : {}),
    ...(r.memoryPeakBytes !== undefined ? { memoryPeakBytes: r.memoryPeakBytes } : {}),
    ...(r.message ? { message: r.message } : {}),
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    updatedAt: r.updatedAt,
  }
}

/**
 * One word for the workload. Ended once every wanted replica finished where the
 * placement counts it (failed if any of those failed, else stopped if any was stopped,
 * else succeeded), or when the queue timeout passed with nothing running.
 */
export function workloadState(p: Placement, statuses: Stored<WorkloadStatusRecord>[]): { state: WorkloadState; final: boolean } {
  const finishedOn = new Set(p.selected.filter((s) => s.finished > 0).map((s) => s.meshlet))
  const finals = statuses.filter((s) => isFinal(s.record) && finishedOn.has(s.did))
  const finished = p.selected.reduce((n, s) => n + s.finished, 0)
  const active = statuses.some((s) => isActive(s.record))
  const ended = (): WorkloadState =>
    finals.some((s) => s.record.state === 'failed') ? 'failed' : finals.some((s) => s.record.state === 'stopped') ? 'stopped' : 'succeeded'
  if (finished >= p.wanted) return { state: ended(), final: true }
  if (p.phase === 'failed' && !active) return { state: 'failed', final: true }
  if (active) return { state: 'running', final: false }
  if (p.phase === 'queued') return { state: 'queued', final: false }
  return { state: 'pending', final: false }
}

export function workloadView(state: PublicState, w: Stored<WorkloadRecord>, p: Placement): { view: WorkloadView; final: boolean } {
  const r = w.record
  const statuses = currentStatuses(state, w)
  const { state: st, final } = workloadState(p, statuses)
  const view: WorkloadView = {
    uri: w.uri,
    cid: w.cid,
    owner: w.did,
    ...(r.name ? { name: r.name } : {}),
    image: r.image,
    replicas: r.replicas,
    resources: r.resources,
    ...(r.tier ? { tier: r.tier } : {}),
    createdAt: r.createdAt,
    state: st,
    phase: p.phase,
    placed: p.placed,
    ...(p.reason ? { reason: clip(p.reason, 2048) } : {}),
    ...(Number.isFinite(p.queueDeadline) ? { queueDeadline: new Date(p.queueDeadline).toISOString() } : {}),
    statuses: statuses.map(replicaView),
  }
  return { view, final }
}

export function placementView(p: Placement): PlacementView {
  return {
    phase: p.phase,
    round: p.round,
    placed: p.placed,
    wanted: p.wanted,
    settled: p.settled,
    ...(p.reason ? { reason: clip(p.reason, 2048) } : {}),
    queueDeadline: new Date(p.queueDeadline).toISOString(),
    waitingFor: p.invited,
    selected: p.selected.map((s) => ({ meshlet: s.meshlet, replicas: s.replicas, finished: s.finished, round: s.round, via: s.via, confirmed: s.confirmed })),
    whyNot: p.whyNot.map((x) => ({ meshlet: x.meshlet, reason: clip(x.reason, 512) })),
    answers: p.answers.map(
      (a): AnswerView => ({
        uri: a.uri,
        meshlet: a.did,
        round: a.round,
        accept: a.accept,
        slots: a.slots,
        ...(a.reason ? { reason: a.reason } : {}),
        createdAt: new Date(a.createdAt).toISOString(),
      }),
    ),
    rejected: p.rejected.map((x) => ({ uri: x.uri, reason: x.reason })),
  }
}

const KIND_ORDER = ['submitted', 'offered', 'declined', 'bid-rejected', 'placed', 'queued', 'scheduled', 'running', 'paused', 'yielded', 'succeeded', 'failed', 'stopped']

/**
 * The workload's life, oldest first, from signed timestamps only: submitted (its
 * createdAt), every answer (bid createdAt), placed or queued (when the answer that
 * settled the round was written), and every replica state — those the appview saw go by
 * on the firehose (status updatedAt), and from the latest record its startedAt and
 * finishedAt.
 */
export function timeline(state: PublicState, w: Stored<WorkloadRecord>, p: Placement, history: HistoryRow[]): TimelineEvent[] {
  const out: TimelineEvent[] = [{ at: w.record.createdAt, kind: 'submitted', ...(w.record.name ? { detail: w.record.name } : {}) }]
  const rejected = new Map(p.rejected.map((x) => [x.uri, x.reason]))
  for (const b of state.bidsFor(w.uri)) {
    if (b.record.workload.cid !== w.cid) continue
    const why = rejected.get(b.uri)
    const r = b.record
    out.push({
      at: r.createdAt,
      kind: why ? 'bid-rejected' : r.decline ? 'declined' : 'offered',
      meshlet: b.did,
      round: r.round,
      detail: why ?? (r.decline ? (r.reason ?? 'declined') : `offers ${r.slots ?? 1} slot(s)`),
    })
  }
  const settledAt = settlingAnswer(p)
  if (settledAt !== undefined && (p.phase === 'placed' || p.phase === 'queued')) {
    out.push({
      at: new Date(settledAt).toISOString(),
      kind: p.phase,
      round: p.round,
      detail: p.phase === 'placed' ? `${p.placed}/${p.wanted} on ${p.selected.map((s) => s.meshlet).join(', ')}` : (p.reason ?? ''),
    })
  }
  const seen = new Set<string>()
  for (const h of history) {
    if (h.workloadCid !== w.cid) continue
    const key = `${h.statusUri}\0${h.state}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ at: h.at, kind: h.state, meshlet: h.meshlet, replica: h.replica, ...(h.message ? { detail: h.message } : {}) })
  }
  const statuses = currentStatuses(state, w)
  for (const s of statuses) {
    const r = s.record
    const base = { meshlet: s.did, replica: r.replica }
    if (r.startedAt && !seen.has(`${s.uri}\0running`)) out.push({ at: r.startedAt, kind: 'running', ...base })
    const endKey = `${s.uri}\0${r.state}`
    if (r.finishedAt && isFinal(r) && !seen.has(endKey)) out.push({ at: r.finishedAt, kind: r.state, ...base, detail: outcome(r) })
    else if (!r.finishedAt && !seen.has(endKey) && !(r.state === 'running' && r.startedAt)) out.push({ at: r.updatedAt, kind: r.state, ...base, ...(r.message ? { detail: r.message } : {}) })
  }
  // a finished replica's history line carries its outcome too
  for (const e of out) {
    if (e.detail || !e.meshlet || !['succeeded', 'failed', 'stopped'].includes(e.kind)) continue
    const s = statuses.find((x) => x.did === e.meshlet && x.record.replica === e.replica)
    if (s && s.record.state === e.kind) e.detail = outcome(s.record)
  }
  for (const e of out) if (e.detail) e.detail = clip(e.detail, 2048)
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || cmp(a.meshlet ?? '', b.meshlet ?? ''))
}

/** At most `bytes` of UTF-8 (the lexicons' maxLength), ending in … when cut. */
export function clip(s: string, bytes: number): string {
  if (Buffer.byteLength(s) <= bytes) return s
  let out = s.slice(0, bytes - 3)
  while (Buffer.byteLength(out) > bytes - 3) out = out.slice(0, -1)
  return `${out}…`
}

/** When the current round's outcome was settled: the latest answer it counted (ms), if any. */
function settlingAnswer(p: Placement): number | undefined {
  const inRound = p.answers.filter((a) => a.round === p.round)
  if (inRound.length === 0) return undefined
  return Math.max(...inRound.map((a) => a.createdAt))
}

function outcome(r: WorkloadStatusRecord): string {
  return [
    r.exitCode !== undefined ? `exit ${r.exitCode}` : '',
    r.cpuMillis !== undefined ? `${(r.cpuMillis / 1000).toFixed(3)} cpu-s` : '',
    r.memoryPeakBytes !== undefined ? `peak ${Math.round(r.memoryPeakBytes / 2 ** 20)} MiB` : '',
    r.message ?? '',
  ]
    .filter(Boolean)
    .join(', ')
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
