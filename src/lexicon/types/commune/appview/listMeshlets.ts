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
const id = 'commune.appview.listMeshlets'

export type QueryParams = {
  /** Only the meshlets whose link to this owner verifies. */
  owner?: string
}
export type InputSchema = undefined

export interface OutputSchema {
  meshlets: CommuneAppviewDefs.MeshletView[]
  /** The clock the health was judged at. */
  now: string
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
