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
const id = 'farm.meshlet.getWorkloadLogs'

export type QueryParams = {
  uri: string
  replica: number
  /** Byte offset returned by an earlier call; continue from there. */
  cursor?: string
  /** Most bytes to return. */
  limit: number
}
export type InputSchema = undefined

export interface OutputSchema {
  uri: string
  replica: number
  /** UTF-8 output, stdout and stderr interleaved. */
  logs: string
  /** Pass back to read what follows. */
  cursor: string
  /** True when output before the requested cursor was already dropped from the ring. */
  truncated?: boolean
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
