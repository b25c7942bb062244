/**
 * GENERATED CODE - DO NOT MODIFY
 */
import { type ValidationResult, BlobRef } from '@atproto/lexicon'
import { CID } from 'multiformats/cid'
import { validate as _validate } from '../../../lexicons.js'
import {
  type $Typed,
  is$typed as _is$typed,
  type OmitKey,
} from '../../../util.js'
import type * as CommuneSchedulerDefs from '../scheduler/defs.js'
import type * as CommuneSchedulerCapacity from '../scheduler/capacity.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'commune.appview.defs'

/** One workload record, summarised: its replicas' states and its placement. */
export interface WorkloadView {
  $type?: 'commune.appview.defs#workloadView'
  uri: string
  cid: string
  /** The repo the workload record lives in. */
  owner: string
  name?: string
  image: string
  /** Replicas wanted. */
  replicas: number
  resources: CommuneSchedulerDefs.Resources
  tier?: string
  createdAt: string
  /** One word for the whole workload: pending (being placed or about to start), queued (no meshlet with room yet), running (a replica runs), or how it ended once every wanted replica finished (failed also when the queue timeout passed with none running). */
  state:
    | 'pending'
    | 'queued'
    | 'running'
    | 'succeeded'
    | 'failed'
    | 'stopped'
    | (string & {})
  /** The placement's phase (docs/protocol.md). */
  phase: 'placing' | 'placed' | 'queued' | 'failed' | (string & {})
  /** Replicas with a meshlet: finished, running and selected. */
  placed: number
  /** For queued or failed: why replicas have no meshlet. */
  reason?: string
  /** When replicas still unplaced fail. */
  queueDeadline?: string
  /** Every status record about this version of the workload, by meshlet and replica. */
  statuses: ReplicaView[]
}

const hashWorkloadView = 'workloadView'

export function isWorkloadView<V>(v: V) {
  return is$typed(v, id, hashWorkloadView)
}

export function validateWorkloadView<V>(v: V) {
  return validate<WorkloadView & V>(v, id, hashWorkloadView)
}

/** One workloadStatus record: a meshlet's report on one replica. */
export interface ReplicaView {
  $type?: 'commune.appview.defs#replicaView'
  /** The status record. */
  uri: string
  meshlet: string
  replica: number
  state:
    | 'scheduled'
    | 'running'
    | 'succeeded'
    | 'failed'
    | 'stopped'
    | 'yielded'
    | 'paused'
    | (string & {})
  round?: number
  exitCode?: number
  cpuMillis?: number
  memoryPeakBytes?: number
  message?: string
  startedAt?: string
  finishedAt?: string
  updatedAt: string
}

const hashReplicaView = 'replicaView'

export function isReplicaView<V>(v: V) {
  return is$typed(v, id, hashReplicaView)
}

export function validateReplicaView<V>(v: V) {
  return validate<ReplicaView & V>(v, id, hashReplicaView)
}

/** The placement of one workload, as every meshlet computes it (src/scheduler/placement.ts place()), at the appview's clock. */
export interface PlacementView {
  $type?: 'commune.appview.defs#placementView'
  phase: 'placing' | 'placed' | 'queued' | 'failed' | (string & {})
  /** The round being decided. */
  round: number
  placed: number
  wanted: number
  /** Every replica is placed, or no answer can change the current round any more. */
  settled: boolean
  reason?: string
  queueDeadline: string
  /** Candidates that should answer the current round and have not. */
  waitingFor: string[]
  selected: AssignmentView[]
  /** Every known meshlet that takes no replica, and why. */
  whyNot: WhyNotView[]
  /** The answers that count, by round. */
  answers: AnswerView[]
  rejected: RejectedBidView[]
}

const hashPlacementView = 'placementView'

export function isPlacementView<V>(v: V) {
  return is$typed(v, id, hashPlacementView)
}

export function validatePlacementView<V>(v: V) {
  return validate<PlacementView & V>(v, id, hashPlacementView)
}

export interface AssignmentView {
  $type?: 'commune.appview.defs#assignmentView'
  meshlet: string
  /** Replicas it runs or is to run now. */
  replicas: number
  /** Replicas it finished (never run again). */
  finished: number
  round: number
  via: 'held' | 'answer' | 'finished' | (string & {})
  /** May run now: no candidate ranked above it in its round is still to answer. */
  confirmed: boolean
}

const hashAssignmentView = 'assignmentView'

export function isAssignmentView<V>(v: V) {
  return is$typed(v, id, hashAssignmentView)
}

export function validateAssignmentView<V>(v: V) {
  return validate<AssignmentView & V>(v, id, hashAssignmentView)
}

export interface WhyNotView {
  $type?: 'commune.appview.defs#whyNotView'
  meshlet: string
  /** not-linked, not-a-member, infeasible:memory, stale-heartbeat, declined:no room, lost:heartbeat-expired, awaiting-answer, not-needed, ... (docs/protocol.md). */
  reason: string
}

const hashWhyNotView = 'whyNotView'

export function isWhyNotView<V>(v: V) {
  return is$typed(v, id, hashWhyNotView)
}

export function validateWhyNotView<V>(v: V) {
  return validate<WhyNotView & V>(v, id, hashWhyNotView)
}

export interface AnswerView {
  $type?: 'commune.appview.defs#answerView'
  /** The bid record. */
  uri: string
  meshlet: string
  round: number
  /** An offer (true) or a decline. */
  accept: boolean
  slots: number
  reason?: string
  createdAt: string
}

const hashAnswerView = 'answerView'

export function isAnswerView<V>(v: V) {
  return is$typed(v, id, hashAnswerView)
}

export function validateAnswerView<V>(v: V) {
  return validate<AnswerView & V>(v, id, hashAnswerView)
}

export interface RejectedBidView {
  $type?: 'commune.appview.defs#rejectedBidView'
  uri: string
  reason:
    | 'wrong-workload-cid'
    | 'not-a-candidate'
    | 'after-queue-timeout'
    | 'superseded'
    | 'conflicting-answers'
    | (string & {})
}

const hashRejectedBidView = 'rejectedBidView'

export function isRejectedBidView<V>(v: V) {
  return is$typed(v, id, hashRejectedBidView)
}

export function validateRejectedBidView<V>(v: V) {
  return validate<RejectedBidView & V>(v, id, hashRejectedBidView)
}

/** One step in a workload's life, from signed timestamps: the workload's createdAt, each bid's createdAt, each status's startedAt, finishedAt and (for the states the appview saw on the firehose) updatedAt. */
export interface TimelineEvent {
  $type?: 'commune.appview.defs#timelineEvent'
  at: string
  kind:
    | 'submitted'
    | 'offered'
    | 'declined'
    | 'bid-rejected'
    | 'placed'
    | 'queued'
    | 'scheduled'
    | 'running'
    | 'paused'
    | 'succeeded'
    | 'failed'
    | 'stopped'
    | 'yielded'
    | (string & {})
  meshlet?: string
  replica?: number
  round?: number
  /** The reason or outcome in words: a decline's reason, an exit code, a status message. */
  detail?: string
}

const hashTimelineEvent = 'timelineEvent'

export function isTimelineEvent<V>(v: V) {
  return is$typed(v, id, hashTimelineEvent)
}

export function validateTimelineEvent<V>(v: V) {
  return validate<TimelineEvent & V>(v, id, hashTimelineEvent)
}

/** One meshlet, from its capacity record (the heartbeat), its link records and the status records it wrote. */
export interface MeshletView {
  $type?: 'commune.appview.defs#meshletView'
  did: string
  /** The owner, when the link verifies both ways. */
  owner?: string
  linked: boolean
  /** From the heartbeat's age: green within one interval, yellow within three, red beyond (each with the protocol's clock-skew allowance); unknown without a capacity record. */
  health: 'green' | 'yellow' | 'red' | 'unknown' | (string & {})
  /** The capacity record's updatedAt. */
  heartbeatAt?: string
  heartbeatAgeSeconds?: number
  heartbeatSeconds: number
  onlineSince?: string
  total?: CommuneSchedulerDefs.Resources
  allocatable?: CommuneSchedulerDefs.Resources
  /** Replicas it reports running, of workloads that still exist. */
  running: number
  /** Replicas it reports paused. */
  paused: number
  draining: boolean
  declining?: string
  disk?: CommuneSchedulerCapacity.Disk
  arch?: string
  drivers: string[]
  endpoint?: string
  /** Names of its cluster records. */
  clusters: string[]
}

const hashMeshletView = 'meshletView'

export function isMeshletView<V>(v: V) {
  return is$typed(v, id, hashMeshletView)
}

export function validateMeshletView<V>(v: V) {
  return validate<MeshletView & V>(v, id, hashMeshletView)
}

/** One owner over one period: what its meshlets served to other owners' workloads and what its workloads used on other owners' meshlets. A finished replica counts in the period its finishedAt falls in; cpu is what fair share counts (src/scheduler/fairshare.ts), memory is the memory the workload requested times the replica's wall time (docs/appview.md). */
export interface LedgerRow {
  $type?: 'commune.appview.defs#ledgerRow'
  owner: string
  periodStart: string
  /** Exclusive. */
  periodEnd: string
  servedCpuMillis: number
  usedCpuMillis: number
  /** Served minus used. */
  balanceCpuMillis: number
  servedMemoryMiBSeconds: number
  usedMemoryMiBSeconds: number
  balanceMemoryMiBSeconds: number
  servedReplicas: number
  usedReplicas: number
}

const hashLedgerRow = 'ledgerRow'

export function isLedgerRow<V>(v: V) {
  return is$typed(v, id, hashLedgerRow)
}

export function validateLedgerRow<V>(v: V) {
  return validate<LedgerRow & V>(v, id, hashLedgerRow)
}
