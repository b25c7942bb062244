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
const id = 'commune.scheduler.defs'

/** An amount of compute. Used both for what a workload replica needs and for what a meshlet offers. */
export interface Resources {
  $type?: 'commune.scheduler.defs#resources'
  /** CPU in thousandths of a core (1000 = one core). */
  cpuMillis: number
  /** Memory in MiB. */
  memoryMiB: number
  /** Scratch disk in MiB. 0 or absent means none is needed. */
  storageMiB?: number
  /** Number of whole GPUs. */
  gpus?: number
}

const hashResources = 'resources'

export function isResources<V>(v: V) {
  return is$typed(v, id, hashResources)
}

export function validateResources<V>(v: V) {
  return validate<Resources & V>(v, id, hashResources)
}

/** One GPU as detected on a meshlet (nvidia-smi). */
export interface Gpu {
  $type?: 'commune.scheduler.defs#gpu'
  index: number
  /** Product name, e.g. 'NVIDIA H100 80GB HBM3'. */
  model: string
  memoryMiB: number
  uuid?: string
}

const hashGpu = 'gpu'

export function isGpu<V>(v: V) {
  return is$typed(v, id, hashGpu)
}

export function validateGpu<V>(v: V) {
  return validate<Gpu & V>(v, id, hashGpu)
}

/** A key/value label on a meshlet, matched by workload constraints. */
export interface Label {
  $type?: 'commune.scheduler.defs#label'
  key: string
  value: string
}

const hashLabel = 'label'

export function isLabel<V>(v: V) {
  return is$typed(v, id, hashLabel)
}

export function validateLabel<V>(v: V) {
  return validate<Label & V>(v, id, hashLabel)
}

/** A plain (public) environment variable for a workload's container. Never put secrets here: use sealedSecret. */
export interface EnvVar {
  $type?: 'commune.scheduler.defs#envVar'
  name: string
  value: string
}

const hashEnvVar = 'envVar'

export function isEnvVar<V>(v: V) {
  return is$typed(v, id, hashEnvVar)
}

export function validateEnvVar<V>(v: V) {
  return validate<EnvVar & V>(v, id, hashEnvVar)
}

/** An environment variable sealed to one meshlet's published encryption key (capacity.encryptionKey). Only that meshlet can open it. */
export interface SealedSecret {
  $type?: 'commune.scheduler.defs#sealedSecret'
  name: string
  /** The meshlet whose key sealed this value. */
  meshlet: string
  /** base64: ephemeral X25519 public key (32 bytes) || nonce (12) || AES-256-GCM ciphertext+tag. */
  ciphertext: string
}

const hashSealedSecret = 'sealedSecret'

export function isSealedSecret<V>(v: V) {
  return is$typed(v, id, hashSealedSecret)
}

export function validateSealedSecret<V>(v: V) {
  return validate<SealedSecret & V>(v, id, hashSealedSecret)
}

/** Where a workload may run. Every given field must match. */
export interface Constraints {
  $type?: 'commune.scheduler.defs#constraints'
  /** Acceptable CPU architectures; empty means any. */
  arch?: ('amd64' | 'arm64' | (string & {}))[]
  /** Labels the meshlet must carry (exact key and value). */
  labels?: Label[]
  /** If set, only these meshlets may run it. */
  meshlets?: string[]
  /** Substring the GPU model name must contain, e.g. 'H100'. */
  gpuModel?: string
}

const hashConstraints = 'constraints'

export function isConstraints<V>(v: V) {
  return is$typed(v, id, hashConstraints)
}

export function validateConstraints<V>(v: V) {
  return validate<Constraints & V>(v, id, hashConstraints)
}
