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
const id = 'commune.scheduler.capacity'

export interface Main {
  $type: 'commune.scheduler.capacity'
  total: CommuneSchedulerDefs.Resources
  allocatable: CommuneSchedulerDefs.Resources
  gpus?: CommuneSchedulerDefs.Gpu[]
  /** Execution drivers available. */
  drivers: ('docker' | 'process' | (string & {}))[]
  labels?: CommuneSchedulerDefs.Label[]
  arch: 'amd64' | 'arm64' | (string & {})
  /** Base URL of the meshlet's farm.meshlet.* XRPC service. */
  endpoint?: string
  /** base64 X25519 public key to which secrets for this meshlet are sealed. */
  encryptionKey?: string
  /** True while the meshlet takes no new work. */
  draining?: boolean
  disk?: Disk
  /** Why this meshlet takes no new work now (draining, disk floor), if it takes none. Informational: the meshlet's own declines are what count. */
  declining?: string
  /** When this meshlet's current run of heartbeats began (its daemon started). A meshlet that came online after a workload was created ranks after those that were there (docs/protocol.md, late joiners). */
  onlineSince?: string
  /** How often this record is refreshed. */
  heartbeatSeconds?: number
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

export interface Disk {
  $type?: 'commune.scheduler.capacity#disk'
  totalMiB: number
  freeMiB: number
  /** New work is declined when free disk would fall under this (default max(20 % of total, 50 GiB)). */
  floorMiB: number
}

const hashDisk = 'disk'

export function isDisk<V>(v: V) {
  return is$typed(v, id, hashDisk)
}

export function validateDisk<V>(v: V) {
  return validate<Disk & V>(v, id, hashDisk)
}
