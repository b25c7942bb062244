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
import type * as ComAtprotoRepoStrongRef from '../../com/atproto/repo/strongRef.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'commune.scheduler.workloadStatus'

export interface Main {
  $type: 'commune.scheduler.workloadStatus'
  workload: ComAtprotoRepoStrongRef.Main
  /** Index of this replica among those this meshlet runs for the workload (0 unless the workload allows packing). */
  replica: number
  round?: number
  state:
    | 'scheduled'
    | 'running'
    | 'succeeded'
    | 'failed'
    | 'stopped'
    | 'yielded'
    | 'paused'
    | (string & {})
  /** Present only when the placement could not place every replica: how many it placed (below the workload's replicas). */
  placed?: number
  exitCode?: number
  /** CPU time used, in milliseconds of one core. */
  cpuMillis?: number
  memoryPeakBytes?: number
  /** Why it is in this state (e.g. the reason of a failure). */
  message?: string
  startedAt?: string
  finishedAt?: string
  updatedAt: string
  [k: string]: unknown
}

const hashMain = 'main'

export function isMain<V>(v: V) {
  return is$typed(v, id, hashMain)
}

export function validateMain<V>(v: V) {
  return validate<Main & V>(v, id, hashMain, true)
}

export {
  type Main as Record,
  isMain as isRecord,
  validateMain as validateRecord,
}
