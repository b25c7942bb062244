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
import type * as CommuneSchedulerDefs from '../../commune/scheduler/defs.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'farm.meshlet.getCapacity'

export type QueryParams = {}
export type InputSchema = undefined

export interface OutputSchema {
  did: string
  owner?: string
  total: CommuneSchedulerDefs.Resources
  allocatable: CommuneSchedulerDefs.Resources
  gpus?: CommuneSchedulerDefs.Gpu[]
  drivers: string[]
  draining: boolean
  /** Replicas running now. */
  running: number
}

export type HandlerInput = void

export interface HandlerSuccess {
  encoding: 'application/json'
  body: OutputSchema
  headers?: { [key: string]: string }
}

export interface HandlerError {
  status: number
  message?: string
}

export type HandlerOutput = HandlerError | HandlerSuccess
