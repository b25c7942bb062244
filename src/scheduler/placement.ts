// The placement of one workload, as a pure function of the public records seen so far
// and a time. Every meshlet runs this same function; given the same records it returns
// byte-identical output whatever order they arrived in. See docs/protocol.md.
import type { BidRecord, WorkloadRecord } from '../records/index.js'
import { balances } from './fairshare.js'
import { infeasibility, maxSlots } from './feasibility.js'
import { rendezvous } from './hash.js'
import { acceptsWorkFrom, verifiedOwner } from './membership.js'
import type { PublicState, Stored } from './state.js'

export const DEFAULT_BID_WINDOW_MS = 3000
/** Extra wait after the bid window for bids created in time but still in flight. */
export const DEFAULT_GRACE_MS = 1000
/** A meshlet whose heartbeat is this many intervals old when a workload is created is not a candidate. */
export const HEARTBEAT_MISSES = 3
export const DEFAULT_HEARTBEAT_SECONDS = 300

export interface PlacementOptions {
  graceMs?: number
  defaultWindowMs?: number
}

export interface Candidate {
  did: string
  owner: string
  score: number
  /** Most replicas it could take (1 unless the workload allows packing). */
  slots: number
  /** Why it is eligible: cluster membership, its owner's own workload, or a share grant uri. */
  via: 'own' | 'cluster' | 'grant'
}

export interface Answer {
  did: string
  uri: string
  accept: boolean
  slots: number
}

export type BidRejection =
  | 'wrong-workload-cid'
  | 'wrong-round'
  | 'before-window'
  | 'after-window'
  | 'not-a-candidate'
  | 'superseded'

export interface Assignment {
  meshlet: string
  replicas: number
}

export interface Placement {
  workload: { uri: string; cid: string; owner: string }
  round: number
  wanted: number
  placed: number
  opensAt: number
  /** After this, invitees that have not answered no longer hold their place in line. */
  invitationDeadline: number
  /** Bids created after this are invalid. */
  windowEndsAt: number
  /** The latest the round closes: window end plus a grace for delivery. */
  closesAt: number
  closed: boolean
  closedBy: 'all-answered' | 'window' | null
  candidates: Candidate[]
  answers: Answer[]
  /** Candidates that should answer now (bid or decline) and have not. */
  invited: string[]
  /** Current selection in rank order (final once closed). */
  selected: Assignment[]
  /** Selected meshlets that no unanswered candidate outranks: safe to start now. */
  confirmed: string[]
  rejected: { uri: string; reason: BidRejection }[]
  /** The next moment at which this output can change without new records. */
  nextDeadline: number | null
}

export function windowOf(w: WorkloadRecord, opts: PlacementOptions = {}) {
  return windowFrom(Date.parse(w.createdAt), w, opts)
}

function windowFrom(opensAt: number, w: WorkloadRecord, opts: PlacementOptions) {
  const window = w.bidWindowMs ?? opts.defaultWindowMs ?? DEFAULT_BID_WINDOW_MS
  const windowEndsAt = opensAt + window
  return {
    opensAt,
    invitationDeadline: opensAt + Math.floor(window / 2),
    windowEndsAt,
    closesAt: windowEndsAt + (opts.graceMs ?? DEFAULT_GRACE_MS),
  }
}

/** Eligible, feasible meshlets for a workload, best first. */
export function rankCandidates(state: PublicState, workload: Stored<WorkloadRecord>): Candidate[] {
  const w = workload.record
  const createdAt = Date.parse(w.createdAt)
  const balance = balances(state, createdAt)
  const out: (Candidate & { tie: string })[] = []
  for (const cap of state.capacities.values()) {
    const did = cap.did
    const owner = verifiedOwner(state, did)
    if (!owner) continue
    const hb = (cap.record.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000
    if (Date.parse(cap.record.updatedAt) + HEARTBEAT_MISSES * hb < createdAt) continue
    const via = owner === workload.did ? 'own' : acceptsWorkFrom(state, did, workload.did) ? 'cluster' : grantFor(state, workload, did, owner)
    if (!via) continue
    if (infeasibility(w, did, cap.record)) continue
    out.push({
      did,
      owner,
      via,
      slots: maxSlots(w, cap.record),
      score: score(w, owner === workload.did, balance.get(owner) ?? 0, cap.record.total.cpuMillis, cap.record.total.memoryMiB),
      tie: rendezvous(workload.uri, did),
    })
  }
  out.sort((a, b) => b.score - a.score || cmp(a.tie, b.tie) || cmp(a.did, b.did))
  return out.map(({ tie: _tie, ...c }) => c)
}

/**
 * Higher is better. The owner's own meshlet first; then owners who have consumed more
 * than they served (so contributions even out); then roomier machines.
 */
export function score(w: WorkloadRecord, own: boolean, balanceCpuMillis: number, cpuMillis: number, memoryMiB: number): number {
  const ownTerm = own ? 500 : 0
  const fairTerm = clamp(Math.round(-balanceCpuMillis / 1000), -300, 300)
  const room = Math.min(cpuMillis / w.resources.cpuMillis, memoryMiB / w.resources.memoryMiB)
  const fitTerm = clamp(Math.round(Math.log2(room) * 10), 0, 100)
  return 1000 + ownTerm + fairTerm + fitTerm
}

function grantFor(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string, owner: string): 'grant' | undefined {
  const createdAt = Date.parse(workload.record.createdAt)
  for (const g of state.grants.values()) {
    const r = g.record
    if (g.did !== owner || r.meshlet !== meshlet || r.recipient !== workload.did || r.paused) continue
    if (r.expiresAt && Date.parse(r.expiresAt) <= createdAt) continue
    if (r.allowedImages?.length && !r.allowedImages.some((p) => workload.record.image.startsWith(p))) continue
    return 'grant'
  }
  return undefined
}

/** The answer that counts for each candidate: one per meshlet per round, earliest first. */
export function validAnswers(
  bids: Stored<BidRecord>[],
  workload: Stored<WorkloadRecord>,
  candidates: Map<string, Candidate>,
  round: number,
  win: { opensAt: number; windowEndsAt: number },
): { answers: Map<string, Answer>; rejected: { uri: string; reason: BidRejection }[] } {
  const rejected: { uri: string; reason: BidRejection }[] = []
  const byMeshlet = new Map<string, Stored<BidRecord>>()
  for (const bid of bids) {
    const reason = bidRejection(bid, workload, candidates, round, win)
    if (reason) {
      rejected.push({ uri: bid.uri, reason })
      continue
    }
    const prev = byMeshlet.get(bid.did)
    if (!prev || earlier(bid, prev)) {
      if (prev) rejected.push({ uri: prev.uri, reason: 'superseded' })
      byMeshlet.set(bid.did, bid)
    } else {
      rejected.push({ uri: bid.uri, reason: 'superseded' })
    }
  }
  const answers = new Map<string, Answer>()
  for (const [did, bid] of byMeshlet) {
    const accept = !bid.record.decline
    const slots = accept ? Math.max(1, Math.min(bid.record.slots ?? 1, candidates.get(did)!.slots)) : 0
    answers.set(did, { did, uri: bid.uri, accept, slots })
  }
  rejected.sort((a, b) => cmp(a.uri, b.uri))
  return { answers, rejected }
}

function bidRejection(
  bid: Stored<BidRecord>,
  workload: Stored<WorkloadRecord>,
  candidates: Map<string, Candidate>,
  round: number,
  win: { opensAt: number; windowEndsAt: number },
): BidRejection | undefined {
  if (bid.record.workload.cid !== workload.cid) return 'wrong-workload-cid'
  if (bid.record.round !== round) return 'wrong-round'
  const at = Date.parse(bid.record.createdAt)
  if (!(at >= win.opensAt)) return 'before-window'
  if (at > win.windowEndsAt) return 'after-window'
  if (!candidates.has(bid.did)) return 'not-a-candidate'
  return undefined
}

function earlier(a: Stored<BidRecord>, b: Stored<BidRecord>): boolean {
  const d = Date.parse(a.record.createdAt) - Date.parse(b.record.createdAt)
  return d < 0 || (d === 0 && a.rkey < b.rkey)
}

/** At most this many re-placement rounds follow the first. */
export const MAX_ROUNDS = 5

interface Window {
  opensAt: number
  invitationDeadline: number
  windowEndsAt: number
  closesAt: number
}

interface RoundResult {
  round: number
  win: Window
  wanted: number
  candidates: Candidate[]
  answers: Map<string, Answer>
  rejected: { uri: string; reason: BidRejection }[]
  selected: Assignment[]
  confirmed: string[]
  invited: string[]
  closed: boolean
  closedBy: Placement['closedBy']
}

/**
 * Round 0 places the workload; each later round replaces replicas whose meshlets were
 * lost (see lostAt), opening at the earliest loss among the previous selection and
 * excluding every meshlet lost so far. Survivors keep their replicas.
 */
export function place(
  state: PublicState,
  workloadUri: string,
  now: number,
  opts: PlacementOptions = {},
): Placement | undefined {
  const workload = state.workloads.get(workloadUri)
  if (!workload) return undefined
  const w = workload.record
  const ranked = rankCandidates(state, workload)
  const bids = state.bidsFor(workload.uri)
  const rejected: { uri: string; reason: BidRejection }[] = []
  const excluded = new Set<string>()
  let survivors: Assignment[] = []
  let r = runRound(workload, ranked, bids, 0, windowOf(w, opts), w.replicas, now)
  rejected.push(...r.rejected)
  while (r.closed && r.round < MAX_ROUNDS) {
    const selection = [...survivors, ...r.selected]
    const losses = selection.flatMap((a) => {
      const at = lostAt(state, workload, a.meshlet)
      return at !== undefined && at <= now ? [{ a, at }] : []
    })
    if (losses.length === 0) break
    const first = Math.min(...losses.map((l) => l.at))
    const lost = new Set(losses.filter((l) => l.at === first).map((l) => l.a.meshlet))
    for (const m of lost) excluded.add(m)
    survivors = selection.filter((a) => !lost.has(a.meshlet))
    const win = windowFrom(Math.max(first, r.win.opensAt), w, opts)
    const taken = new Set(survivors.map((a) => a.meshlet))
    const pool = ranked.filter((c) => !excluded.has(c.did) && (w.allowPacking || !taken.has(c.did)))
    const held = survivors.reduce((n, a) => n + a.replicas, 0)
    r = runRound(workload, pool, bids, r.round + 1, win, w.replicas - held, now)
    rejected.push(...r.rejected)
  }
  // bids for rounds that never opened
  const rounds = new Set(Array.from({ length: r.round + 1 }, (_, i) => i))
  for (const b of bids) if (!rounds.has(b.record.round)) rejected.push({ uri: b.uri, reason: 'wrong-round' })
  rejected.sort((a, b) => cmp(a.uri, b.uri))

  const selected = mergeSelection(survivors, r.selected)
  const placed = selected.reduce((n, a) => n + a.replicas, 0)
  const deadlines = r.closed
    ? lossDeadlines(state, workload, selected, now)
    : [r.win.invitationDeadline, r.win.windowEndsAt, r.win.closesAt].filter((t) => t > now)
  return {
    workload: { uri: workload.uri, cid: workload.cid, owner: workload.did },
    round: r.round,
    wanted: w.replicas,
    placed,
    ...r.win,
    closed: r.closed,
    closedBy: r.closedBy,
    candidates: r.candidates,
    answers: [...r.answers.values()].sort((a, b) => cmp(a.did, b.did)),
    invited: r.invited,
    selected,
    confirmed: r.closed ? selected.map((s) => s.meshlet) : [...survivors.map((s) => s.meshlet), ...r.confirmed],
    rejected,
    nextDeadline: deadlines.length ? Math.min(...deadlines) : null,
  }
}

function runRound(
  workload: Stored<WorkloadRecord>,
  candidates: Candidate[],
  bids: Stored<BidRecord>[],
  round: number,
  win: Window,
  wanted: number,
  now: number,
): RoundResult {
  const byDid = new Map(candidates.map((c) => [c.did, c]))
  const { answers, rejected } = validAnswers(bids.filter((b) => b.record.round === round), workload, byDid, round, win)
  const inviting = now < win.windowEndsAt
  const holdPlace = now < win.invitationDeadline
  const selected: Assignment[] = []
  const confirmed: string[] = []
  const invited: string[] = []
  let remaining = wanted
  let potential = 0
  let unansweredAbove = false
  let lastSelectedAnsweredPrefix = true
  for (const c of candidates) {
    const a = answers.get(c.did)
    if (!a) {
      if (inviting && potential < wanted) invited.push(c.did)
      if (holdPlace) potential += c.slots
      if (remaining > 0) unansweredAbove = true
      continue
    }
    if (!a.accept || remaining <= 0) continue
    const take = Math.min(a.slots, remaining)
    selected.push({ meshlet: c.did, replicas: take })
    if (!unansweredAbove) confirmed.push(c.did)
    else lastSelectedAnsweredPrefix = false
    remaining -= take
    potential += take
  }
  const allAnswered = candidates.every((c) => answers.has(c.did))
  const fastClosed = (remaining <= 0 && lastSelectedAnsweredPrefix) || allAnswered
  const closedByWindow = now >= win.closesAt
  return {
    round,
    win,
    wanted,
    candidates,
    answers,
    rejected,
    selected,
    confirmed,
    invited,
    closed: fastClosed || closedByWindow,
    closedBy: fastClosed ? 'all-answered' : closedByWindow ? 'window' : null,
  }
}

/** Survivors first (they keep their replicas), then the round's winners. */
function mergeSelection(survivors: Assignment[], fresh: Assignment[]): Assignment[] {
  const out = survivors.map((a) => ({ ...a }))
  for (const a of fresh) {
    const same = out.find((x) => x.meshlet === a.meshlet)
    if (same) same.replicas += a.replicas
    else out.push({ ...a })
  }
  return out
}

/**
 * When a selected meshlet counts as lost for this workload, from signed data only: its
 * heartbeat expired (capacity.updatedAt + HEARTBEAT_MISSES intervals), or it recorded
 * that it could not run the replica (a failed status without an exit code). A meshlet
 * whose replica finished is never lost. A meshlet that comes back moves its heartbeat
 * expiry later, regains its place, and the replacement yields.
 */
export function lostAt(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string): number | undefined {
  const statuses = state.statusesFor(workload.uri).filter((s) => s.did === meshlet && s.record.workload.cid === workload.cid)
  if (statuses.some((s) => s.record.state === 'succeeded' || (s.record.state === 'failed' && s.record.exitCode !== undefined) || s.record.state === 'stopped')) {
    return undefined
  }
  const times: number[] = []
  for (const s of statuses) if (s.record.state === 'failed') times.push(Date.parse(s.record.updatedAt))
  const cap = state.capacities.get(meshlet)
  if (cap) times.push(Date.parse(cap.record.updatedAt) + HEARTBEAT_MISSES * (cap.record.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000)
  else times.push(Date.parse(workload.record.createdAt))
  return times.length ? Math.min(...times) : undefined
}

function lossDeadlines(state: PublicState, workload: Stored<WorkloadRecord>, selected: Assignment[], now: number): number[] {
  return selected.flatMap((a) => {
    const at = lostAt(state, workload, a.meshlet)
    return at !== undefined && at > now ? [at] : []
  })
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v))
}
