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
import type * as CommuneAppviewDefs from './defs.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'commune.appview.getWorkload'

export type QueryParams = {
  uri: string
}
export type InputSchema = undefined

export interface OutputSchema {
  workload: CommuneAppviewDefs.WorkloadView
  /** The commune.scheduler.workload record as its owner signed it. */
  record: { [_ in string]: unknown }
  placement: CommuneAppviewDefs.PlacementView
  /** Oldest first. */
  timeline: CommuneAppviewDefs.TimelineEvent[]
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
  error?: 'WorkloadNotFound'
}

export type HandlerOutput = HandlerError | HandlerSuccess
