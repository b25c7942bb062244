import { createHash } from 'node:crypto'

/** Rendezvous weight of a meshlet for a workload: spreads ties without coordination. */
export function rendezvous(workloadUri: string, meshletDid: string): string {
  return createHash('sha256').update(workloadUri).update('\0').update(meshletDid).digest('hex').slice(0, 16)
}

/** The record key of a meshlet's status record for one of its replicas of a workload. */
export function statusRecordKey(workloadUri: string, replica: number): string {
  return `${createHash('sha256').update(workloadUri).digest('hex').slice(0, 24)}-${replica}`
}
