// The placement of one workload, as a pure function of the public records seen so far
// and a time. Every meshlet runs this same function; given the same records it returns
// byte-identical output whatever order they arrived in. See docs/protocol.md.
//
// Safety does not rest on timing: a meshlet may run a replica only when every candidate
// ranked above it has answered (or is lost), and the ranking of a workload only ever
// grows at the bottom. A slow firehose or a loaded machine costs time, never a replica.
import type { BidRecord, WorkloadRecord, WorkloadStatusRecord } from '../records/index.js'
import { balances } from './fairshare.js'
import { copiesOfRequest, infeasibility, maxSlots, type Infeasible } from './feasibility.js'
import { rendezvous } from './hash.js'
import { eligibility, holdsReplica, type Ineligible } from './grants.js'
import { verifiedOwner } from './membership.js'
import { couldNotRun, isActive, isFinal } from './replica.js'
import type { PublicState, Stored } from './state.js'

/** A meshlet whose heartbeat is this many intervals old is stale (at createdAt) or lost (now). */
export const HEARTBEAT_MISSES = 3
export const DEFAULT_HEARTBEAT_SECONDS = 300
/** Owner and meshlet clocks may differ by this much; every comparison of a signed time with a clock allows it. */
export const DEFAULT_SKEW_MS = 5000
/**
 * Records older than this (by their own timestamps) are taken to have reached every
 * meshlet: fair share counts replicas that finished this long before a workload was
 * created, so a status still in flight somewhere cannot reorder a ranking.
 */
export const SETTLE_MS = 60_000
export const DEFAULT_QUEUE_TIMEOUT_SECONDS = 3600
/**
 * A candidate's answer is due this long (or the workload's `answerDeadlineSeconds`) after
 * the one ranked above it in its round was (the first: after the round began; after a
 * loss: after the loss). One that publishes a heartbeat stamped at or after its due time
 * without having answered counts as lost for the workload: the heartbeat proves it was
 * alive and had written every answer it was going to write before it (a repo reaches its
 * followers in order).
 */
export const ANSWER_DEADLINE_MS = 120_000

export interface PlacementOptions {
  skewMs?: number
}

export interface Candidate {
  did: string
  owner: string
  score: number
  /** Most replicas it could take (1 unless the workload allows packing). */
  slots: number
  /** Why it is eligible: its owner's own workload, cluster membership, or a share grant. */
  via: 'own' | 'cluster' | 'grant'
  /** The share grant it is eligible under (at:// uri), when via is 'grant'. */
  grant?: string
  /** Came online after the workload was created: ranked after those that were there, and not in round 0. */
  late: boolean
  /**
   * Came online less than SETTLE_MS before the workload was created: a view may not hold its
   * heartbeat yet, so it ranks after those whose coming online had settled (by score among
   * the fresh ones, and in round 0 still).
   */
  fresh: boolean
  /** For a late or fresh joiner: when it came online (ms), by its own heartbeat record. */
  since: number | null
  /**
   * Its status records showed it full a settled while before the workload was created: as
   * many replicas running as its total holds copies of this request. Ranked after those
   * with room, since it would most likely decline (and a decline is a write).
   */
  full: boolean
}

export interface Answer {
  did: string
  uri: string
  round: number
  accept: boolean
  slots: number
  reason?: string
  /** The bid's own createdAt (ms): when a later round opened. */
  createdAt: number
}

export type BidRejection =
  | 'wrong-workload-cid'
  | 'not-a-candidate'
  | 'after-queue-timeout'
  | 'superseded'
  | 'conflicting-answers'

export interface Assignment {
  meshlet: string
  /** Replicas it runs (or is to run) now. */
  replicas: number
  /** Replicas it already finished: never run again. */
  finished: number
  round: number
  /** held: its replica runs (a status says so); answer: chosen from this round's answers; finished: done. */
  via: 'held' | 'answer' | 'finished'
  /** May run now: no candidate above it in its round is still to answer. */
  confirmed: boolean
}

export type Phase =
  /** Answers are still awaited. */
  | 'placing'
  /** Every replica has a meshlet. */
  | 'placed'
  /** Every candidate answered and some replicas have no meshlet; a meshlet with room may offer in the next round. */
  | 'queued'
  /** The queue timeout passed with replicas still unplaced. */
  | 'failed'

export type WhyNot =
  | 'not-linked'
  /** not-a-member, tier:above-ceiling, grant:expired, grant:paused, grant:over-cap:memory, … (grants.ts) */
  | Ineligible
  | 'no-capacity-record'
  | `infeasible:${Infeasible}`
  | 'stale-heartbeat'
  | 'lost:heartbeat-expired'
  | 'lost:could-not-run'
  | 'lost:no-answer'
  | `declined:${string}`
  | `bid-rejected:${BidRejection}`
  | 'awaiting-answer'
  | 'not-needed'
  | 'late-joiner'

export interface Placement {
  workload: { uri: string; cid: string; owner: string }
  wanted: number
  /** Replicas with a meshlet: finished, running and selected. */
  placed: number
  /** The round being decided now. */
  round: number
  phase: Phase
  /** Every replica is placed or no answer can change the current round any more. */
  settled: boolean
  /** Eligible, feasible meshlets, best first (lost ones included). */
  candidates: Candidate[]
  answers: Answer[]
  /** Candidates that should answer the current round now (bid or decline) and have not. */
  invited: string[]
  /** Finished, held and chosen meshlets, in that order. */
  selected: Assignment[]
  /** Meshlets that may run their replicas now. */
  confirmed: string[]
  /** When queued: the first round a meshlet with room may open by offering (any later one it has not answered will do), and who may. */
  nextRound: { round: number; pool: string[]; late: { round: number; pool: string[] } } | null
  /** For queued or failed: why replicas have no meshlet, in one line. */
  reason: string | null
  queueDeadline: number
  /** Every known meshlet that takes no replica, and why. */
  whyNot: { meshlet: string; reason: WhyNot }[]
  rejected: { uri: string; reason: BidRejection }[]
  /** The next moment at which this output can change without new records. */
  nextDeadline: number | null
}

export interface Ranking {
  candidates: Candidate[]
  /** Known meshlets that are not candidates, and why. */
  excluded: Map<string, WhyNot>
}

/**
 * Eligible, feasible meshlets for a workload, best first: those online when it was
 * created by score, then rendezvous hash, then DID; late joiners after them in the order
 * they came online. A newcomer can only ever join below everyone already ranked.
 */
export function rankCandidates(state: PublicState, workload: Stored<WorkloadRecord>, opts: PlacementOptions = {}): Ranking {
  const w = workload.record
  const createdAt = Date.parse(w.createdAt)
  const skew = opts.skewMs ?? DEFAULT_SKEW_MS
  const out: (Candidate & { tie: string; since: number; room: number })[] = []
  const excluded = new Map<string, WhyNot>()
  for (const did of state.knownMeshlets()) {
    const cap = state.capacities.get(did)
    const owner = verifiedOwner(state, did)
    if (!owner) {
      excluded.set(did, 'not-linked')
      continue
    }
    // own, cluster or grant, within the tier ceiling and the grant's terms (grants.ts)
    const eligible = eligibility(state, workload, did, owner, { holds: () => holdsReplica(state, workload, did) })
    if (!eligible.eligible) {
      excluded.set(did, eligible.reason)
      continue
    }
    if (!cap) {
      excluded.set(did, 'no-capacity-record')
      continue
    }
    const r = cap.record
    const hb = (r.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000
    if (Date.parse(r.updatedAt) + HEARTBEAT_MISSES * hb + skew < createdAt) {
      excluded.set(did, 'stale-heartbeat')
      continue
    }
    const infeasible = infeasibility(w, did, r)
    if (infeasible) {
      excluded.set(did, `infeasible:${infeasible}`)
      continue
    }
    // settled records only, as fair share: every view that ranks this workload counts the same statuses
    const room = copiesOfRequest(w, r) - state.activeReplicasAt(did, createdAt - SETTLE_MS)
    let since = r.onlineSince ? Date.parse(r.onlineSince) : -Infinity
    // A meshlet that answered round 0 shortly before it last came online was there when
    // asked: a quick restart does not cost it its place. One that was away longer than its
    // heartbeats allow may have been replaced meanwhile, and comes back as a late joiner.
    if (since > createdAt && answeredBefore(state, workload, did, since - HEARTBEAT_MISSES * hb, since)) since = -Infinity
    out.push({
      did,
      owner,
      via: eligible.via,
      ...(eligible.grant ? { grant: eligible.grant.uri } : {}),
      slots: maxSlots(w, r),
      score: 0,
      room,
      // no margin: a meshlet acts only on its own view, which always holds its own latest capacity record
      late: since > createdAt,
      fresh: since <= createdAt && since + SETTLE_MS > createdAt,
      full: room <= 0,
      tie: rendezvous(workload.uri, did),
      since,
    })
  }
  // fair share from what the candidates themselves served and recorded (see balances)
  const balance = balances(state, createdAt - SETTLE_MS, out.map((c) => c.did).sort())
  for (const c of out) c.score = score(c.via === 'own', balance.get(c.owner) ?? 0, c.room)
  // settled, then fresh, then late joiners (in the order they came online): a view that has
  // not yet received a newcomer's heartbeat is missing only someone ranked below every
  // meshlet whose coming online had settled, so it cannot confirm one the newcomer outranks
  const tier = (c: Candidate) => (c.late ? 2 : c.fresh ? 1 : 0)
  out.sort((a, b) => {
    if (tier(a) !== tier(b)) return tier(a) - tier(b)
    if (a.late) return a.since - b.since || cmp(a.tie, b.tie) || cmp(a.did, b.did)
    if (a.full !== b.full) return a.full ? 1 : -1
    return b.score - a.score || cmp(a.tie, b.tie) || cmp(a.did, b.did)
  })
  return { candidates: out.map(({ tie: _t, since, room: _room, ...c }) => ({ ...c, since: c.late || c.fresh ? since : null })), excluded }
}

function onlineSince(state: PublicState, meshlet: string): number {
  const since = state.capacities.get(meshlet)?.record.onlineSince
  return since ? Date.parse(since) : -Infinity
}

function answeredBefore(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string, from: number, until: number): boolean {
  return state.bidsFor(workload.uri).some((b) => {
    if (b.did !== meshlet || b.record.round !== 0 || b.record.workload.cid !== workload.cid) return false
    const at = Date.parse(b.record.createdAt)
    return at >= from && at < until
  })
}

/**
 * Higher is better. The owner's own meshlet first; then owners who have consumed more
 * than they served (so contributions even out); then machines with more room left for
 * copies of the request (`room`: its total's copies less the replicas it ran a settled
 * while before the workload was created).
 */
export function score(own: boolean, balanceCpuMillis: number, room: number): number {
  const ownTerm = own ? 500 : 0
  const fairTerm = clamp(Math.round(-balanceCpuMillis / 1000), -300, 300)
  const fitTerm = room > 0 ? clamp(Math.round(Math.log2(room) * 10), 0, 100) : 0
  return 1000 + ownTerm + fairTerm + fitTerm
}

export function answerDeadlineOf(w: WorkloadRecord): number {
  return w.answerDeadlineSeconds !== undefined ? w.answerDeadlineSeconds * 1000 : ANSWER_DEADLINE_MS
}

export function queueDeadlineOf(w: WorkloadRecord): number {
  return Date.parse(w.createdAt) + (w.queueTimeoutSeconds ?? DEFAULT_QUEUE_TIMEOUT_SECONDS) * 1000
}

/**
 * The answer that counts, per round and candidate. A meshlet answers once per round;
 * copies of the same answer count once (the earliest), two different answers in one
 * round count as a decline, so no later record can turn a decline into an offer.
 */
export function validAnswers(
  bids: Stored<BidRecord>[],
  workload: Stored<WorkloadRecord>,
  candidates: Map<string, Candidate>,
  queueDeadline: number,
): { answers: Map<number, Map<string, Answer>>; rejected: { uri: string; reason: BidRejection }[] } {
  const rejected: { uri: string; reason: BidRejection }[] = []
  const byKey = new Map<string, Stored<BidRecord>[]>()
  for (const bid of bids) {
    const reason = bidRejection(bid, workload, candidates, queueDeadline)
    if (reason) {
      rejected.push({ uri: bid.uri, reason })
      continue
    }
    const key = `${bid.record.round}\0${bid.did}`
    byKey.set(key, [...(byKey.get(key) ?? []), bid])
  }
  const answers = new Map<number, Map<string, Answer>>()
  for (const group of byKey.values()) {
    group.sort((a, b) => Date.parse(a.record.createdAt) - Date.parse(b.record.createdAt) || cmp(a.rkey, b.rkey))
    const first = group[0]
    const conflicting = group.some((b) => !!b.record.decline !== !!first.record.decline)
    for (const b of group.slice(1)) rejected.push({ uri: b.uri, reason: conflicting ? 'conflicting-answers' : 'superseded' })
    const accept = !first.record.decline && !conflicting
    const cand = candidates.get(first.did)!
    const round = first.record.round
    const slots = accept ? Math.max(1, Math.min(first.record.slots ?? 1, cand.slots)) : 0
    const reason = conflicting ? 'conflicting answers' : first.record.decline ? (first.record.reason ?? 'declined') : undefined
    let perRound = answers.get(round)
    if (!perRound) answers.set(round, (perRound = new Map()))
    perRound.set(first.did, { did: first.did, uri: first.uri, round, accept, slots, ...(reason ? { reason } : {}), createdAt: Date.parse(first.record.createdAt) })
  }
  rejected.sort((a, b) => cmp(a.uri, b.uri))
  return { answers, rejected }
}

function bidRejection(
  bid: Stored<BidRecord>,
  workload: Stored<WorkloadRecord>,
  candidates: Map<string, Candidate>,
  queueDeadline: number,
): BidRejection | undefined {
  if (bid.record.workload.cid !== workload.cid) return 'wrong-workload-cid'
  if (!candidates.has(bid.did)) return 'not-a-candidate'
  if (bid.record.round > 0 && !bid.record.decline && !(Date.parse(bid.record.createdAt) <= queueDeadline)) return 'after-queue-timeout'
  return undefined
}

/**
 * When a meshlet counts as lost for this workload, from signed data only: its heartbeat
 * expired (capacity.updatedAt + HEARTBEAT_MISSES intervals), or it recorded that it
 * could not run the replica (a failed status without an exit code). A meshlet that
 * comes back publishes a fresh heartbeat and is no longer lost.
 */
export function lostAt(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string, skewMs = DEFAULT_SKEW_MS): { at: number; why: 'heartbeat-expired' | 'could-not-run' } | undefined {
  for (const s of ownStatuses(state, workload, meshlet)) {
    if (couldNotRun(s.record)) return { at: -Infinity, why: 'could-not-run' }
  }
  const cap = state.capacities.get(meshlet)
  if (!cap) return undefined
  const hb = (cap.record.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000
  return { at: Date.parse(cap.record.updatedAt) + HEARTBEAT_MISSES * hb + skewMs, why: 'heartbeat-expired' }
}

/**
 * When each candidate of a round must have answered: the first `deadline` after
 * the round began, each next one `deadline` after the one above it (or after
 * the one above it was lost, if later). Computed from the ranking, the round's start and
 * signed loss times only — never from when answers happened to arrive — so every view
 * that holds the same heartbeat of a candidate judges it the same way.
 */
function answersDue(inRound: Candidate[], start: number, deadline: number, lostSince: Map<string, number>): Map<string, number> {
  const due = new Map<string, number>()
  let prev = start
  for (const c of inRound) {
    const since = lostSince.get(c.did)
    if (since !== undefined) {
      prev = Math.max(prev, since)
      continue
    }
    prev += deadline
    due.set(c.did, prev)
  }
  return due
}

/**
 * A candidate let its answer's due time pass: it published a heartbeat stamped at or after
 * it without an answer (a heartbeat follows every answer its daemon queued before it), or
 * its answer is stamped two heartbeat intervals past it (a heartbeat must have come first).
 */
function missedDeadline(state: PublicState, meshlet: string, answer: Answer | undefined, due: number): boolean {
  const cap = state.capacities.get(meshlet)?.record
  if (!cap) return false
  if (answer) return answer.createdAt >= due + 2 * (cap.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000
  return Date.parse(cap.updatedAt) >= due
}

/** When a meshlet recorded that it could not run a replica of this version (its latest such status). */
function couldNotRunAt(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string): number {
  let at = -Infinity
  for (const s of ownStatuses(state, workload, meshlet)) {
    if (couldNotRun(s.record)) at = Math.max(at, Date.parse(s.record.finishedAt ?? s.record.updatedAt))
  }
  return at
}

function ownStatuses(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string): Stored<WorkloadStatusRecord>[] {
  return state.statusesFor(workload.uri).filter((s) => s.did === meshlet && s.record.workload.cid === workload.cid)
}

/**
 * Round 0 asks the candidates that were online when the workload was created, best
 * first, as many as the replicas need; a decline or a loss invites the next. Once every
 * candidate has answered and replicas are still missing, the workload is queued: a
 * meshlet that later has room offers in the next round, which fills only what earlier
 * rounds could not. Replicas that run or finished keep their meshlets whatever changes
 * in the ranking later (finality); a running one moves only when its meshlet is lost or
 * no longer eligible.
 */
export function place(state: PublicState, workloadUri: string, now: number, opts: PlacementOptions = {}): Placement | undefined {
  const workload = state.workloads.get(workloadUri)
  if (!workload) return undefined
  const w = workload.record
  const skew = opts.skewMs ?? DEFAULT_SKEW_MS
  const { candidates, excluded } = rankCandidates(state, workload, opts)
  const rank = new Map(candidates.map((c, i) => [c.did, i]))
  const byDid = new Map(candidates.map((c) => [c.did, c]))
  const queueDeadline = queueDeadlineOf(w)
  const bids = state.bidsFor(workload.uri)
  const { answers, rejected } = validAnswers(bids, workload, byDid, queueDeadline)
  const whyNot = new Map<string, WhyNot>(excluded)

  // Who offered for this version at all (any round): only they can hold or finish a replica.
  const offered = new Map<string, number>()
  for (const [round, perRound] of answers) {
    for (const a of perRound.values()) if (a.accept) offered.set(a.did, Math.min(round, offered.get(a.did) ?? Infinity))
  }
  // Finality: a finished replica counts where it finished whatever later happens to its
  // meshlet's heartbeat, membership or grants — so membership is not checked here, and a
  // linked meshlet that is no member can claim a finished replica with an offer and a status
  // (docs/protocol.md, known limits).
  const offeredEver = new Set(bids.filter((b) => b.record.workload.cid === workload.cid && !b.record.decline).map((b) => b.did))

  const lost = new Map<string, 'heartbeat-expired' | 'could-not-run'>()
  /** When each lost candidate was lost (by signed times): the next one's answer is due after it. */
  const lostSince = new Map<string, number>()
  /** When each candidate not lost yet will be, by its heartbeat. */
  const losesAt = new Map<string, number>()
  const deadlines: number[] = []
  for (const c of candidates) {
    const l = lostAt(state, workload, c.did, skew)
    if (!l) continue
    if (l.at <= now) {
      lost.set(c.did, l.why)
      // by signed times alone (not this view's skew allowance), so every view derives the same due times
      lostSince.set(c.did, l.why === 'could-not-run' ? couldNotRunAt(state, workload, c.did) : l.at - skew)
    } else losesAt.set(c.did, l.at)
  }

  const finished = new Map<string, number>()
  // A meshlet with a running replica holds every replica it has not ended (those it is
  // still starting included: their statuses may be a moment behind the first one).
  const running = new Set<string>()
  const active = new Map<string, number>()
  for (const s of state.statusesFor(workload.uri)) {
    if (s.record.workload.cid !== workload.cid) continue
    // finality: a finished replica stays finished whatever happens to its meshlet's eligibility
    if (isFinal(s.record) && offeredEver.has(s.did) && verifiedOwner(state, s.did)) finished.set(s.did, (finished.get(s.did) ?? 0) + 1)
    else if (isActive(s.record) || s.record.state === 'scheduled') {
      active.set(s.did, (active.get(s.did) ?? 0) + 1)
      // a restarted meshlet holds only what it re-asserted after it came back (its container survived)
      if (isActive(s.record) && !(Date.parse(s.record.updatedAt) < onlineSince(state, s.did))) running.add(s.did)
    }
  }

  const selected: Assignment[] = []
  // Every finished replica stays counted where it finished, even beyond replicas (a lost
  // meshlet's copy that finished after its replacement did): what finished never moves.
  const perMeshlet = w.allowPacking ? Infinity : 1
  for (const did of [...finished.keys()].sort()) {
    selected.push({ meshlet: did, replicas: 0, finished: Math.min(finished.get(did)!, perMeshlet), round: offered.get(did) ?? 0, via: 'finished', confirmed: true })
  }
  let remaining = Math.max(0, w.replicas - selected.reduce((n, s) => n + s.finished, 0))
  // Replicas that run keep their meshlets, earliest round first, then by rank.
  const holders = candidates
    .filter((c) => running.has(c.did) && offered.has(c.did) && !lost.has(c.did))
    .sort((a, b) => offered.get(a.did)! - offered.get(b.did)! || rank.get(a.did)! - rank.get(b.did)!)
  for (const c of holders) {
    const done = selected.find((s) => s.meshlet === c.did)
    const take = Math.min(active.get(c.did)!, c.slots - (done?.finished ?? 0), remaining)
    if (take <= 0) continue
    remaining -= take
    if (done) Object.assign(done, { replicas: take, via: 'held' })
    else selected.push({ meshlet: c.did, replicas: take, finished: 0, round: offered.get(c.did)!, via: 'held', confirmed: true })
  }
  const taken = new Set(selected.map((s) => s.meshlet))

  let round = 0
  let phase: Phase = 'placing'
  let settled = false
  let invited: string[] = []
  let nextRound: Placement['nextRound'] = null
  /** Candidates of the round being decided that have not answered: their loss moves it on. */
  let awaited: string[] = []
  /** Candidates of the round being decided that let their answer's due time pass. */
  let silent = new Set<string>()
  for (;;) {
    const here = answers.get(round) ?? new Map<string, Answer>()
    // A late joiner takes part in a later round it answered, or that opened (its first
    // offer) after it came online; so it is awaited only where it was there from the start,
    // and its arrival cannot reopen a round that ended short.
    const openedAt = Math.min(...[...here.values()].filter((a) => a.accept).map((a) => a.createdAt))
    const inRound = (c: Candidate) => !c.late || (round > 0 && (here.has(c.did) || c.since! <= openedAt))
    const due = answersDue(candidates.filter(inRound), round === 0 ? Date.parse(w.createdAt) : openedAt, answerDeadlineOf(w), lostSince)
    const open = candidates.filter((c) => !taken.has(c.did) && !lost.has(c.did) && inRound(c))
    silent = new Set(open.filter((c) => missedDeadline(state, c.did, here.get(c.did), due.get(c.did)!)).map((c) => c.did))
    const pool = open.filter((c) => !silent.has(c.did))
    // Every round asks its pool in turn, as round 0 does: a round can only end short once
    // everyone in it has answered, so no offer still in flight can change it afterwards.
    invited = []
    let need = remaining
    let potential = 0
    let unansweredAbove = false
    for (const c of pool) {
      const a = here.get(c.did)
      if (!a) {
        if (potential < remaining) {
          invited.push(c.did)
          potential += c.slots
        }
        if (need > 0) unansweredAbove = true
        continue
      }
      if (!a.accept || need <= 0) continue
      const take = Math.min(a.slots, need)
      selected.push({ meshlet: c.did, replicas: take, finished: 0, round, via: 'answer', confirmed: !unansweredAbove })
      taken.add(c.did)
      need -= take
      potential += take
    }
    awaited = pool.filter((c) => !here.has(c.did)).map((c) => c.did)
    const chosen = selected.filter((s) => s.via === 'answer' && s.round === round)
    const roundSettled = need === 0 ? chosen.every((s) => s.confirmed) : pool.every((c) => here.has(c.did))
    remaining = need
    if (!roundSettled) break
    if (remaining === 0) {
      phase = 'placed'
      settled = true
      invited = []
      break
    }
    // Short of replicas: the next round opens with an offer from a meshlet that now has
    // room. Rounds after this one that hold no offer (only declines) are skipped.
    // A round exists once anyone offered in it, even a meshlet that holds its replica by
    // now: the others in it must still all answer before it may end short in turn.
    const nextPool = candidates.filter((c) => !taken.has(c.did) && !lost.has(c.did))
    const offerRounds = [...answers].filter(([r, m]) => r > round && [...m.values()].some((a) => a.accept)).map(([r]) => r)
    if (offerRounds.length === 0) {
      settled = true
      invited = []
      phase = now >= queueDeadline + skew ? 'failed' : 'queued'
      if (phase === 'queued') {
        // a late joiner offers into a round nobody has answered yet
        const fresh = Math.max(round, ...answers.keys()) + 1
        nextRound = { round: round + 1, pool: nextPool.map((c) => c.did), late: { round: fresh, pool: nextPool.filter((c) => c.late).map((c) => c.did) } }
        deadlines.push(queueDeadline + skew)
      }
      break
    }
    round = Math.min(...offerRounds)
  }

  // why each known meshlet takes no replica
  const lastAnswer = (did: string): Answer | undefined => {
    for (let r = round; r >= 0; r--) {
      const a = answers.get(r)?.get(did)
      if (a) return a
    }
    return undefined
  }
  const rejectedBy = new Map<string, BidRejection>()
  const bidOwner = new Map(bids.map((b) => [b.uri, b.did]))
  for (const r of rejected) if (r.reason !== 'superseded') rejectedBy.set(bidOwner.get(r.uri)!, r.reason)
  for (const c of candidates) {
    if (taken.has(c.did)) continue
    const l = lost.get(c.did)
    const a = lastAnswer(c.did)
    const why: WhyNot = l
      ? `lost:${l}`
      : silent.has(c.did)
        ? 'lost:no-answer'
        : a && !a.accept
          ? `declined:${a.reason ?? 'declined'}`
          : a
            ? 'not-needed'
            : rejectedBy.has(c.did)
              ? `bid-rejected:${rejectedBy.get(c.did)!}`
              : c.late && round === 0 && phase === 'placing'
                ? 'late-joiner'
                : invited.includes(c.did)
                  ? 'awaiting-answer'
                  : 'not-needed'
    whyNot.set(c.did, why)
  }
  for (const s of selected) whyNot.delete(s.meshlet)

  // A loss changes what anyone does only for a meshlet that runs (or is to run) a replica,
  // or one the undecided round still waits for; a finished workload waits for no time at all.
  for (const did of new Set([...selected.filter((s) => s.replicas > 0).map((s) => s.meshlet), ...(settled ? [] : awaited)])) {
    const at = losesAt.get(did)
    if (at !== undefined) deadlines.push(at)
  }

  const placed = Math.min(w.replicas, selected.reduce((n, s) => n + s.replicas + s.finished, 0))
  const allAnswers = [...answers.values()].flatMap((m) => [...m.values()]).sort((a, b) => a.round - b.round || cmp(a.did, b.did))
  return {
    workload: { uri: workload.uri, cid: workload.cid, owner: workload.did },
    wanted: w.replicas,
    placed,
    round,
    phase,
    settled,
    candidates,
    answers: allAnswers,
    invited,
    selected,
    confirmed: selected.filter((s) => s.confirmed && s.replicas > 0).map((s) => s.meshlet),
    nextRound,
    reason: phase === 'queued' || phase === 'failed' ? shortfallReason(w.replicas - placed, phase, whyNot, candidates.length, candidates.filter((c) => !selected.some((s) => s.meshlet === c.did)).length) : null,
    queueDeadline,
    whyNot: [...whyNot].map(([meshlet, reason]) => ({ meshlet, reason })).sort((a, b) => cmp(a.meshlet, b.meshlet)),
    rejected,
    nextDeadline: deadlines.length ? Math.min(...deadlines) : null,
  }
}

/** One line: how many replicas wait, and the reasons counted (e.g. "2 declined:no room"). */
function shortfallReason(missing: number, phase: Phase, whyNot: Map<string, WhyNot>, candidates: number, candidatesHoldingNone: number): string {
  const counts = new Map<string, number>()
  for (const why of whyNot.values()) counts.set(why, (counts.get(why) ?? 0) + 1)
  const parts = [...counts].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0])).map(([why, n]) => `${n} ${why}`)
  const head = phase === 'failed' ? `${missing} replica(s) unplaced at the queue timeout` : `${missing} replica(s) queued`
  // every candidate already holds what it offered: more replicas than the commune can spread them over
  const why =
    candidates === 0
      ? 'no eligible meshlet'
      : candidatesHoldingNone === 0
        ? `every eligible meshlet (${candidates}) holds all it can take`
        : 'no meshlet with room'
  return `${head}: ${why}${parts.length ? ` (${parts.join(', ')})` : ''}`
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v))
}
