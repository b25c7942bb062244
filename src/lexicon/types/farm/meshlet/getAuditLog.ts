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
const id = 'farm.meshlet.getAuditLog'

export type QueryParams = {
  limit: number
  /** From the previous page: entries older than it. */
  cursor?: string
}
export type InputSchema = undefined

export interface OutputSchema {
  cursor?: string
  entries: Entry[]
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

/** One control action. */
export interface Entry {
  $type?: 'farm.meshlet.getAuditLog#entry'
  /** Increasing with time. */
  id: number
  at: string
  /** An XRPC method NSID (farm.meshlet.drain, ...), pairing.issue, pairing.redeem, grant.created|updated|paused|resumed|revoked|deleted, or what the engine reports (revoke and kill stops). */
  action: string
  /** Who did it, when known: the verified caller, the grant's author. */
  actor?: string
  /** What it was done to: a workload URI, a grant's recipient. */
  target?: string
  /** For calls: ok, refused (4xx, status in detail) or error (5xx); for the rest, how it ended. */
  outcome: 'ok' | 'refused' | 'error' | 'paired' | 'seen' | (string & {})
  /** More about it: status and error name of a call, a grant's uri and what changed, ... */
  detail?: { [_ in string]: unknown }
}

const hashEntry = 'entry'

export function isEntry<V>(v: V) {
  return is$typed(v, id, hashEntry)
}

export function validateEntry<V>(v: V) {
  return validate<Entry & V>(v, id, hashEntry)
}
