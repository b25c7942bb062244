import { createHash } from 'node:crypto'

/** Rendezvous weight of a meshlet for a workload: spreads ties without coordination. */
export function rendezvous(workloadUri: string, meshletDid: string): string {
  const key = `${workloadUri}\0${meshletDid}`
  let weight = weights.get(key)
  if (weight === undefined) {
    if (weights.size >= MAX_CACHED_WEIGHTS) weights.clear()
    weights.set(key, (weight = computeRendezvous(workloadUri, meshletDid)))
  }
  return weight
}

/** A placement ranks the same pairs again on every record it sees: hashing them once is most of its cost otherwise. */
const weights = new Map<string, string>()
const MAX_CACHED_WEIGHTS = 200_000

function computeRendezvous(workloadUri: string, meshletDid: string): string {
  return createHash('sha256').update(workloadUri).update('\0').update(meshletDid).digest('hex').slice(0, 16)
}

/** The record key of a meshlet's status record for one of its replicas of a workload. */
export function statusRecordKey(workloadUri: string, replica: number): string {
  return `${createHash('sha256').update(workloadUri).digest('hex').slice(0, 24)}-${replica}`
}
