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
import type * as ComAtprotoRepoStrongRef from '../../com/atproto/repo/strongRef.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'commune.scheduler.shareGrant'

export interface Main {
  $type: 'commune.scheduler.shareGrant'
  meshlet: string
  /** The recipient's owner DID. */
  recipient: string
  /** Highest trust tier the recipient's workloads may run at on this meshlet (a < b < c). */
  tier: 'a' | 'b' | 'c' | (string & {})
  /** Images allowed; empty means any. An entry with a digest (repo@sha256:...) or a tag (repo:tag) matches that exact reference; a bare repository (busybox, docker.io/library/busybox) matches any tag or digest of exactly that repository, never a longer name. */
  allowedImages?: string[]
  capabilities?: ('cpu' | 'gpu' | 'storage' | 'network' | (string & {}))[]
  /** Replicas of the recipient this meshlet runs at once under this grant. Default 1; a further offer waits (declined with the reason) until one finishes. */
  maxConcurrentJobs?: number
  caps?: CommuneSchedulerDefs.Resources
  /** Wall-time cap per job: a replica running longer is killed (the workload's own timeoutSeconds applies if shorter). */
  maxJobSeconds?: number
  /** Disk floor protecting the lender's machine. */
  minFreeDiskMiB?: number
  expiresAt?: string
  /** While true, no new work is placed under this grant; running work continues. */
  paused?: boolean
  /** What happens to running replicas on revoke. Default drain. */
  onRevoke?: 'drain' | 'kill' | (string & {})
  /** On a drain revoke, how long running replicas may still finish. Default 60 for tier a, 300 for tiers b and c. */
  drainGraceSeconds?: number
  /** Set by the owner to revoke: no new work from then; running replicas drain (onRevoke drain, the default) or stop at once (kill), each ending stopped with the reason. A deleted grant is revoked with kill. */
  revokedAt?: string
  request?: ComAtprotoRepoStrongRef.Main
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
