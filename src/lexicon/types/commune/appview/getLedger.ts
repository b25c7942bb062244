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
const id = 'commune.appview.getLedger'

export type QueryParams = {
  /** Inclusive. */
  from: string
  /** Exclusive. */
  to: string
  /** One row per owner for the whole range (total), or per UTC day, ISO week (from Monday) or calendar month, clipped to the range. */
  period: 'total' | 'day' | 'week' | 'month' | (string & {})
  /** Only this owner's rows. */
  owner?: string
}
export type InputSchema = undefined

export interface OutputSchema {
  from: string
  to: string
  period: string
  /** By period, then owner. Owners with nothing served or used in a period have no row. */
  rows: CommuneAppviewDefs.LedgerRow[]
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
