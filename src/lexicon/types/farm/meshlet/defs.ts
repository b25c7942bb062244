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

const is$typed = _is$typed,
  validate = _validate
const id = 'farm.meshlet.defs'

/** One replica of a workload on this meshlet. */
export interface ReplicaView {
  $type?: 'farm.meshlet.defs#replicaView'
  workload: string
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
  /** The workload's owner. */
  owner?: string
  image?: string
  exitCode?: number
  cpuMillis?: number
  memoryPeakBytes?: number
  message?: string
  startedAt?: string
  finishedAt?: string
  /** Repo writes (bids and statuses) this meshlet has made for this workload since it started: the placement's cost here. */
  writes?: number
}

const hashReplicaView = 'replicaView'

export function isReplicaView<V>(v: V) {
  return is$typed(v, id, hashReplicaView)
}

export function validateReplicaView<V>(v: V) {
  return validate<ReplicaView & V>(v, id, hashReplicaView)
}
