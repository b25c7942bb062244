import { createHash } from 'node:crypto'

/** Rendezvous weight of a meshlet for a workload: spreads ties without coordination. */
export function rendezvous(workloadUri: string, meshletDid: string): string {
  let perWorkload = weights.get(workloadUri)
  if (!perWorkload) {
    if (weights.size >= MAX_CACHED_WORKLOADS) weights.clear()
    weights.set(workloadUri, (perWorkload = new Map()))
  }
  let weight = perWorkload.get(meshletDid)
  if (weight === undefined) perWorkload.set(meshletDid, (weight = computeRendezvous(workloadUri, meshletDid)))
  return weight
}

/**
 * A placement ranks the same pairs again on every record it sees: hashing them once is
 * most of its cost otherwise. Nested, so a lookup hashes no newly joined string.
 */
const weights = new Map<string, Map<string, string>>()
const MAX_CACHED_WORKLOADS = 20_000

function computeRendezvous(workloadUri: string, meshletDid: string): string {
  return createHash('sha256').update(workloadUri).update('\0').update(meshletDid).digest('hex').slice(0, 16)
}

/** The record key of a meshlet's status record for one of its replicas of a workload. */
export function statusRecordKey(workloadUri: string, replica: number): string {
  return `${createHash('sha256').update(workloadUri).digest('hex').slice(0, 24)}-${replica}`
}
