// A replica's status record as this meshlet writes it: the next version of the previous
// one for the same workload version, or a fresh one for a new version.
import type { ReplicaInfo } from '../executor/types.js'
import { COLLECTIONS, type WorkloadStatusRecord } from '../records/index.js'
import type { StatusState } from '../scheduler/replica.js'

const OUTCOME_FIELDS = ['exitCode', 'finishedAt', 'message', 'cpuMillis', 'memoryPeakBytes', 'placed'] as const

export function statusRecord(
  prev: WorkloadStatusRecord | undefined,
  workload: { uri: string; cid: string },
  replica: number,
  state: StatusState,
  extra: Partial<WorkloadStatusRecord>,
  now: string,
): WorkloadStatusRecord {
  const same = prev?.workload.cid === workload.cid
  const record: WorkloadStatusRecord = {
    ...(same ? prev : {}),
    $type: COLLECTIONS.workloadStatus,
    workload: { uri: workload.uri, cid: workload.cid },
    replica,
    round: extra.round ?? (same ? prev?.round : undefined) ?? 0,
    state,
    ...extra,
    updatedAt: now,
  }
  // a replica (re)starting carries nothing of an earlier outcome
  if (state === 'scheduled' || state === 'running') for (const k of OUTCOME_FIELDS) if (!(k in extra)) delete record[k]
  return record
}

/** How a replica that exited by itself is recorded: succeeded with 0, failed with its exit code. */
export function outcome(info: ReplicaInfo, now: string): { state: 'succeeded' | 'failed'; extra: Partial<WorkloadStatusRecord> } {
  const ok = info.state === 'exited' && info.exitCode === 0
  return {
    state: ok ? 'succeeded' : 'failed',
    extra: {
      exitCode: clampExit(info.exitCode),
      cpuMillis: Math.max(0, Math.round(info.cpuMillis ?? 0)),
      memoryPeakBytes: Math.max(0, Math.round(info.memoryPeakBytes ?? 0)),
      finishedAt: info.finishedAt ?? now,
      ...(info.message ? { message: info.message.slice(0, 1000) } : {}),
    },
  }
}

function clampExit(code: number | undefined): number {
  if (code === undefined || !Number.isFinite(code)) return -1
  return Math.max(-1, Math.min(255, Math.trunc(code)))
}
