// What this meshlet does next about one workload, as a pure function of the agreed
// placement and what it knows of its own replicas: answer (bid or decline), start,
// stop. The engine applies the answer through its outbox and the driver; nothing here
// does I/O. What runs is what the placement gives this meshlet, never what its own
// earlier status records say.
import type { WorkloadStatusRecord } from '../records/index.js'
import type { Placement } from './placement.js'
import { isActive, isEnded, isFinal } from './replica.js'

export interface LocalReplica {
  replica: number
  /** This meshlet's latest status for it (its own writes believed at once, queued ones included). */
  status?: WorkloadStatusRecord
  /** A container or process for it here: running, being started, or none. */
  process: 'running' | 'starting' | 'none'
}

export interface LocalView {
  did: string
  /** Replicas of this workload that fit in the live allocatable now. */
  room: number
  /** Why this meshlet takes no new work now (draining, driver unavailable, a grant's limit, the disk floor), if it takes none. */
  refuse?: string
  /**
   * The share grant this meshlet runs the workload under is revoked: nothing of it starts
   * here any more, and with `stop` (a kill, or a drain whose grace is over) what runs
   * stops. Either way the replica ends `stopped` with `message`: final, not re-placed.
   */
  revoked?: { stop: boolean; message: string }
  /** Every replica of this workload this meshlet has a status or a process for. */
  replicas: LocalReplica[]
}

export interface AnswerAction {
  round: number
  accept: boolean
  slots: number
  score: number
  reason?: string
  /** Replicas whose `scheduled` status rides in the bid's commit. */
  scheduled: number[]
}

export interface StopAction {
  replica: number
  state: 'yielded' | 'stopped'
  message: string
}

export interface Decision {
  answer?: AnswerAction
  start: number[]
  stop: StopAction[]
  /**
   * Replicas this meshlet is selected for but cannot run, reported as could-not-run (a
   * failed status without an exit code) so the placement moves them at once: a container
   * that was gone when the meshlet came back (rather than starting it again where another
   * meshlet may already have replaced it), or an offer that stood unselected, was
   * withdrawn and is chosen again when the room is taken.
   */
  cannotRun: { replica: number; message: string }[]
}

/** The lexicon's bound on a bid's round. */
const MAX_ROUND = 1000

const NOTHING: Decision = { start: [], stop: [], cannotRun: [] }

export function decide(p: Placement | undefined, local: LocalView): Decision {
  const d = decideOnPlacement(p, local)
  return local.revoked ? underRevokedGrant(d, local, local.revoked) : d
}

/**
 * Under a revoked grant nothing starts here any more (a replica selected but not started
 * is reported could-not-run, so it moves elsewhere if it can), and once its replicas must
 * stop they stop for good: `stopped` (final) with the revocation's reason.
 */
function underRevokedGrant(d: Decision, local: LocalView, revoked: { stop: boolean; message: string }): Decision {
  const notStarted = (replica: number) => ({ replica, message: `${revoked.message} before it started` })
  const cannotRun = [...d.cannotRun, ...d.start.map(notStarted)]
  if (!revoked.stop) return { ...d, start: [], cannotRun }
  const stop: StopAction[] = []
  for (const r of local.replicas) {
    if (r.process !== 'none' || (r.status && isActive(r.status))) stop.push({ replica: r.replica, state: 'stopped', message: revoked.message })
    else if (r.status?.state === 'scheduled' && !cannotRun.some((c) => c.replica === r.replica)) cannotRun.push(notStarted(r.replica))
  }
  return { ...d, start: [], stop, cannotRun }
}

function decideOnPlacement(p: Placement | undefined, local: LocalView): Decision {
  const live = local.replicas.filter((r) => r.process !== 'none' || (r.status && !isEnded(r.status) && r.status.state !== 'scheduled'))
  if (!p) {
    const going = local.replicas.filter((r) => r.process !== 'none' || (r.status && !isEnded(r.status)))
    return { ...NOTHING, stop: going.map((r) => ({ replica: r.replica, state: 'stopped', message: 'workload record deleted by its owner' })) }
  }
  // a replica of an earlier version of the record stops before anything of the new one
  const outdated = live.filter((r) => r.status && r.status.workload.cid !== p.workload.cid)
  if (outdated.length) return { ...NOTHING, stop: outdated.map((r) => ({ replica: r.replica, state: 'stopped', message: 'the workload record was updated' })) }
  const current = local.replicas.filter((r) => !r.status || r.status.workload.cid === p.workload.cid)

  const me = p.candidates.find((c) => c.did === local.did)
  const answered = (round: number) => p.answers.some((a) => a.did === local.did && a.round === round)
  if (me && p.invited.includes(local.did) && !answered(p.round)) {
    return { ...NOTHING, answer: answerFor(p, p.round, me.score, me.slots, local, current) }
  }
  if (me && p.phase === 'queued' && p.nextRound?.pool.includes(local.did) && !local.refuse && local.room > 0) {
    // the first round from which no answer of ours stands (an earlier offer round may have
    // lapsed); a late joiner only opens a fresh round
    let round = me.late ? p.nextRound.late.round : p.nextRound.round
    while (answered(round)) round++
    if (round <= MAX_ROUND) return { ...NOTHING, answer: answerFor(p, round, me.score, me.slots, local, current) }
  }

  const mine = p.selected.find((s) => s.meshlet === local.did)
  // an unconfirmed selection neither starts nor stops anything until the answers above it are in
  if (mine && !mine.confirmed) return NOTHING
  const run = new Set(pickReplicas(current, mine?.replicas ?? 0))
  const idle = [...run].map((i) => current.find((r) => r.replica === i) ?? { replica: i, process: 'none' as const }).filter((r) => r.process === 'none')
  const cannotRun = idle.filter((r) => r.status && isActive(r.status)).map((r) => ({ replica: r.replica, message: 'its container was gone when this meshlet came back' }))
  const start: number[] = []
  // an offer's `scheduled` status reserved its room; a replica without one needs free room now
  let room = local.room
  for (const r of idle) {
    if (r.status && isActive(r.status)) continue
    if (r.status?.state === 'scheduled' && r.status.workload.cid === p.workload.cid) start.push(r.replica)
    else if (room-- > 0) start.push(r.replica)
    else cannotRun.push({ replica: r.replica, message: 'selected on an earlier offer, but its room is taken now' })
  }
  const why = !me ? `no longer eligible (${p.whyNot.find((w) => w.meshlet === local.did)?.reason ?? 'not a candidate'})` : (p.whyNot.find((w) => w.meshlet === local.did)?.reason.startsWith('lost:') ? 'this meshlet counts as lost for the workload' : 'another meshlet was selected')
  const stop: StopAction[] = []
  for (const r of current) {
    if (run.has(r.replica)) continue
    const holds = r.process !== 'none' || (r.status && isActive(r.status))
    // an offer not taken is withdrawn once the round is settled
    const offered = r.status?.state === 'scheduled' && p.settled
    if (holds || offered) stop.push({ replica: r.replica, state: 'yielded', message: why })
  }
  return { answer: undefined, start, stop, cannotRun }
}

/** The replica indices to run: those already running first, then the lowest unfinished ones. */
function pickReplicas(replicas: LocalReplica[], count: number): number[] {
  if (count <= 0) return []
  const byIndex = new Map(replicas.map((r) => [r.replica, r]))
  const running = replicas.filter((r) => r.process !== 'none' || (r.status && isActive(r.status))).map((r) => r.replica).sort((a, b) => a - b)
  const out = running.slice(0, count)
  for (let i = 0; out.length < count && i < 64; i++) {
    const r = byIndex.get(i)
    if (out.includes(i) || (r?.status && isFinal(r.status))) continue
    out.push(i)
  }
  return out.sort((a, b) => a - b)
}

function answerFor(p: Placement, round: number, score: number, maxSlots: number, local: LocalView, replicas: LocalReplica[]): AnswerAction {
  const reason = local.refuse ?? (local.room === 0 ? 'no room' : undefined)
  if (reason) return { round, accept: false, slots: 0, score, reason, scheduled: [] }
  // offer no more than is missing; every slot offered is reserved by its `scheduled` status,
  // so the others see all that this offer may take as soon as they see the offer
  const slots = Math.max(1, Math.min(local.room, maxSlots, p.wanted - p.placed))
  const busy = new Set(replicas.filter((r) => r.process !== 'none' || (r.status && isActive(r.status))).map((r) => r.replica))
  return { round, accept: true, slots, score, scheduled: pickReplicas(replicas, slots + busy.size).filter((i) => !busy.has(i)) }
}
