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
const id = 'commune.scheduler.bid'

export interface Main {
  $type: 'commune.scheduler.bid'
  workload: ComAtprotoRepoStrongRef.Main
  /** 0 for the first placement. A later round opens only after the previous one settled short of replicas, by an offer from a meshlet that now has room; it fills only what the earlier rounds could not. */
  round: number
  /** Higher wins. Recomputed by every meshlet from public records; this value is informative. */
  score: number
  /** How many replicas this meshlet can take (only above 1 when the workload allows packing). */
  slots?: number
  /** True: the meshlet is eligible but will not run it (lets the round close early). */
  decline?: boolean
  /** Why it declined. */
  reason?: string
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
