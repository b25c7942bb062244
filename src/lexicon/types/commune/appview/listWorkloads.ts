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
const id = 'commune.appview.listWorkloads'

export type QueryParams = {
  /** Only this owner's workloads. */
  owner?: string
  /** Only workloads in this state (workloadView.state). */
  state?:
    | 'pending'
    | 'queued'
    | 'running'
    | 'succeeded'
    | 'failed'
    | 'stopped'
    | (string & {})
  limit: number
  /** From the previous page. */
  cursor?: string
}
export type InputSchema = undefined

export interface OutputSchema {
  cursor?: string
  workloads: CommuneAppviewDefs.WorkloadView[]
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
