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
import type * as FarmMeshletDefs from './defs.js'

const is$typed = _is$typed,
  validate = _validate
const id = 'farm.meshlet.deleteWorkload'

export type QueryParams = {}

export interface InputSchema {
  uri: string
}

export interface OutputSchema {
  uri: string
  replicas: FarmMeshletDefs.ReplicaView[]
}

export interface HandlerInput {
  encoding: 'application/json'
  body: InputSchema
}

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
