// What a replica's status record means for placement: one list of states, one helper
// for the record's address. Used by the core, the engine, the CLI and the XRPC methods.
import { COLLECTIONS, type WorkloadStatusRecord } from '../records/index.js'
import { statusRecordKey } from './hash.js'

export type StatusState = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'stopped' | 'yielded' | 'paused'

/** The replica ran and is over: never run again (finality). A `failed` counts only with its exit code. */
export function isFinal(r: Pick<WorkloadStatusRecord, 'state' | 'exitCode'>): boolean {
  return r.state === 'succeeded' || r.state === 'stopped' || (r.state === 'failed' && r.exitCode !== undefined)
}

/** The meshlet could not run the replica at all (no exit code): it is lost for this workload. */
export function couldNotRun(r: Pick<WorkloadStatusRecord, 'state' | 'exitCode'>): boolean {
  return r.state === 'failed' && r.exitCode === undefined
}

/** The replica has a process on its meshlet (holds its place). */
export function isActive(r: Pick<WorkloadStatusRecord, 'state'>): boolean {
  return r.state === 'running' || r.state === 'paused'
}

/** Nothing of this replica runs on its meshlet any more, for whatever reason. */
export function isEnded(r: Pick<WorkloadStatusRecord, 'state' | 'exitCode'>): boolean {
  return r.state === 'yielded' || r.state === 'failed' || isFinal(r)
}

export function statusUri(meshletDid: string, workloadUri: string, replica: number): string {
  return `at://${meshletDid}/${COLLECTIONS.workloadStatus}/${statusRecordKey(workloadUri, replica)}`
}
