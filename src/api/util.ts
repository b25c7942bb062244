// Pieces the farm.meshlet.* methods share: replica views and JSON responses.
import { InvalidRequestError } from '@atproto/xrpc-server'
import type { AppContext } from '../context.js'
import type { ReplicaView } from '../lexicon/types/farm/meshlet/defs.js'
import type { WorkloadStatusRecord } from '../records/index.js'
import { ownerOfUri } from '../scheduler/fairshare.js'
import type { Stored } from '../scheduler/state.js'

export const json = <T>(body: T) => ({ encoding: 'application/json' as const, body })

/** This meshlet's replicas (of one workload, or all), newest first. */
export function replicasOf(ctx: AppContext, uri?: string): ReplicaView[] {
  return [...ctx.state.statuses.values()]
    .filter((s) => s.did === ctx.did && (!uri || s.record.workload.uri === uri))
    .sort((a, b) => (b.record.updatedAt > a.record.updatedAt ? 1 : b.record.updatedAt < a.record.updatedAt ? -1 : a.uri < b.uri ? -1 : 1))
    .map((s) => replicaView(ctx, s))
}

export function replicaView(ctx: AppContext, s: Stored<WorkloadStatusRecord>): ReplicaView {
  const r = s.record
  return {
    workload: r.workload.uri,
    replica: r.replica,
    state: r.state,
    owner: ownerOfUri(r.workload.uri),
    image: ctx.state.workloads.get(r.workload.uri)?.record.image,
    exitCode: r.exitCode,
    cpuMillis: r.cpuMillis,
    memoryPeakBytes: r.memoryPeakBytes,
    message: r.message,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    writes: ctx.engine.writesPerWorkload.get(r.workload.uri) ?? 0,
  }
}

export function requireReplicas(ctx: AppContext, uri: string): ReplicaView[] {
  const replicas = replicasOf(ctx, uri)
  if (replicas.length === 0) throw new InvalidRequestError(`this meshlet holds no replica of ${uri}`, 'WorkloadNotFound')
  return replicas
}

/** A non-negative integer cursor (an offset or an id), or a clear 400. */
export function intCursor(cursor: string | undefined, what: string): number | undefined {
  if (cursor === undefined) return undefined
  const n = /^\d+$/.test(cursor) ? Number(cursor) : Number.NaN
  if (!Number.isSafeInteger(n)) throw new InvalidRequestError(`cursor must be ${what}`)
  return n
}
