// The commune.scheduler.* records: their NSIDs, types (generated from lexicons/), and
// the one place records are validated before they are written or believed.
import { lexicons, ids } from '../lexicon/lexicons.js'
import type * as Meshlet from '../lexicon/types/commune/scheduler/meshlet.js'
import type * as MeshletOwner from '../lexicon/types/commune/scheduler/meshletOwner.js'
import type * as Cluster from '../lexicon/types/commune/scheduler/cluster.js'
import type * as Capacity from '../lexicon/types/commune/scheduler/capacity.js'
import type * as Workload from '../lexicon/types/commune/scheduler/workload.js'
import type * as Bid from '../lexicon/types/commune/scheduler/bid.js'
import type * as WorkloadStatus from '../lexicon/types/commune/scheduler/workloadStatus.js'
import type * as ShareGrant from '../lexicon/types/commune/scheduler/shareGrant.js'
import type * as ShareRequest from '../lexicon/types/commune/scheduler/shareRequest.js'
import type * as ShareDenial from '../lexicon/types/commune/scheduler/shareDenial.js'

export type MeshletRecord = Meshlet.Record
export type MeshletOwnerRecord = MeshletOwner.Record
export type ClusterRecord = Cluster.Record
export type CapacityRecord = Capacity.Record
export type WorkloadRecord = Workload.Record
export type BidRecord = Bid.Record
export type WorkloadStatusRecord = WorkloadStatus.Record
export type ShareGrantRecord = ShareGrant.Record
export type ShareRequestRecord = ShareRequest.Record
export type ShareDenialRecord = ShareDenial.Record
export type { Resources, Gpu, Label, Constraints, EnvVar, SealedSecret } from '../lexicon/types/commune/scheduler/defs.js'

export const COLLECTIONS = {
  meshlet: ids.CommuneSchedulerMeshlet,
  meshletOwner: ids.CommuneSchedulerMeshletOwner,
  cluster: ids.CommuneSchedulerCluster,
  capacity: ids.CommuneSchedulerCapacity,
  workload: ids.CommuneSchedulerWorkload,
  bid: ids.CommuneSchedulerBid,
  workloadStatus: ids.CommuneSchedulerWorkloadStatus,
  shareGrant: ids.CommuneSchedulerShareGrant,
  shareRequest: ids.CommuneSchedulerShareRequest,
  shareDenial: ids.CommuneSchedulerShareDenial,
} as const

export interface RecordTypes {
  'commune.scheduler.meshlet': MeshletRecord
  'commune.scheduler.meshletOwner': MeshletOwnerRecord
  'commune.scheduler.cluster': ClusterRecord
  'commune.scheduler.capacity': CapacityRecord
  'commune.scheduler.workload': WorkloadRecord
  'commune.scheduler.bid': BidRecord
  'commune.scheduler.workloadStatus': WorkloadStatusRecord
  'commune.scheduler.shareGrant': ShareGrantRecord
  'commune.scheduler.shareRequest': ShareRequestRecord
  'commune.scheduler.shareDenial': ShareDenialRecord
}
export type Collection = keyof RecordTypes

export const SCHEDULER_COLLECTIONS: readonly Collection[] = Object.values(COLLECTIONS)

export function isSchedulerCollection(nsid: string): nsid is Collection {
  return (SCHEDULER_COLLECTIONS as readonly string[]).includes(nsid)
}

export type Validated<C extends Collection> =
  | { ok: true; record: RecordTypes[C] }
  | { ok: false; error: string }

/**
 * Validates a record against its lexicon. A PDS answers `validationStatus: unknown` for
 * lexicons it does not know, so this is the only check these records ever get.
 */
export function validateRecord<C extends Collection>(collection: C, value: unknown): Validated<C> {
  try {
    const withType =
      value && typeof value === 'object' && !('$type' in value)
        ? { ...(value as object), $type: collection }
        : value
    if ((withType as { $type?: unknown })?.$type !== collection) {
      return { ok: false, error: `$type is not ${collection}` }
    }
    lexicons.assertValidRecord(collection, withType)
    return { ok: true, record: withType as RecordTypes[C] }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) }
  }
}

/** Like validateRecord, but throws: for records this meshlet is about to write. */
export function assertValidRecord<C extends Collection>(collection: C, value: unknown): RecordTypes[C] {
  const res = validateRecord(collection, value)
  if (!res.ok) throw new InvalidRecordError(collection, res.error)
  return res.record
}

export class InvalidRecordError extends Error {
  constructor(
    readonly collection: string,
    readonly reason: string,
  ) {
    super(`invalid ${collection} record: ${reason}`)
  }
}
