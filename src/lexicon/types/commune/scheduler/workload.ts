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
import type * as CommuneSchedulerDefs from './defs.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'commune.scheduler.workload'

export interface Main {
  $type: 'commune.scheduler.workload'
  /** A human name. */
  name?: string
  /** Container image reference; pin by digest (name@sha256:...) where possible. For the process driver, ignored. */
  image: string
  /** Command and arguments; empty means the image's default. */
  command?: string[]
  env?: CommuneSchedulerDefs.EnvVar[]
  secrets?: CommuneSchedulerDefs.SealedSecret[]
  resources: CommuneSchedulerDefs.Resources
  replicas: number
  constraints?: CommuneSchedulerDefs.Constraints
  /** Required driver; default docker. */
  driver?: 'docker' | 'process' | (string & {})
  /** May several replicas run on one meshlet? Default false. */
  allowPacking?: boolean
  /** Deprecated and ignored since rounds close on answers, not on time (docs/protocol.md). Kept so older records stay valid. */
  bidWindowMs?: number
  /** How long replicas that could not be placed stay queued (from createdAt) before the placement ends them as failed. Default 3600. */
  queueTimeoutSeconds?: number
  /** How long each candidate of a placement round has to answer, counted down the ranking: one that heartbeats past its due time without answering is passed over. Default 120 (docs/protocol.md). */
  answerDeadlineSeconds?: number
  /** Kill a replica that runs longer than this. */
  timeoutSeconds?: number
  /** Trust tier. a: run only, no network, read-only root (default). b: scoped writes, bridge network. c: full host access (only for a meshlet's own owner). */
  tier?: 'a' | 'b' | 'c' | (string & {})
  createdAt: string
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
