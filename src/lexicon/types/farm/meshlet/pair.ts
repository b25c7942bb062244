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
const id = 'farm.meshlet.pair'

export type QueryParams = {}

export interface InputSchema {
  otp: string
}

export interface OutputSchema {
  meshlet: string
  owner: string
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
  error?: 'InvalidOtp' | 'ExpiredOtp' | 'UsedOtp' | 'VoidOtp' | 'AlreadyPaired'
}

export type HandlerOutput = HandlerError | HandlerSuccess
