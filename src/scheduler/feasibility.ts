// Can a meshlet run a workload at all? Judged from its public capacity record, so every
// meshlet judges every other the same way. Live headroom is the bidder's own business:
// it answers with a decline when it is full.
import type { CapacityRecord, WorkloadRecord } from '../records/index.js'

export const DEFAULT_DRIVER = 'docker'

export type Infeasible =
  | 'no-capacity-record'
  | 'cpu'
  | 'memory'
  | 'storage'
  | 'gpus'
  | 'gpu-model'
  | 'arch'
  | 'driver'
  | 'labels'
  | 'not-allowed'

export function infeasibility(
  workload: WorkloadRecord,
  meshletDid: string,
  capacity: CapacityRecord | undefined,
): Infeasible | undefined {
  if (!capacity) return 'no-capacity-record'
  const need = workload.resources
  const have = capacity.total
  if (need.cpuMillis > have.cpuMillis) return 'cpu'
  if (need.memoryMiB > have.memoryMiB) return 'memory'
  if ((need.storageMiB ?? 0) > (have.storageMiB ?? 0)) return 'storage'
  const gpus = need.gpus ?? 0
  if (gpus > (capacity.gpus?.length ?? 0)) return 'gpus'
  const c = workload.constraints
  if (gpus > 0 && c?.gpuModel && !(capacity.gpus ?? []).some((g) => g.model.includes(c.gpuModel!))) {
    return 'gpu-model'
  }
  if (c?.arch?.length && !c.arch.includes(capacity.arch)) return 'arch'
  if (!capacity.drivers.includes(workload.driver ?? DEFAULT_DRIVER)) return 'driver'
  for (const want of c?.labels ?? []) {
    if (!(capacity.labels ?? []).some((l) => l.key === want.key && l.value === want.value)) return 'labels'
  }
  if (c?.meshlets?.length && !c.meshlets.includes(meshletDid)) return 'not-allowed'
  return undefined
}

/** How many copies of the request a meshlet's total capacity holds (of this workload or any other its size). */
export function copiesOfRequest(workload: WorkloadRecord, capacity: CapacityRecord): number {
  const need = workload.resources
  const have = capacity.total
  let n = Math.min(Math.floor(have.cpuMillis / need.cpuMillis), Math.floor(have.memoryMiB / need.memoryMiB))
  if ((need.gpus ?? 0) > 0) n = Math.min(n, Math.floor((capacity.gpus?.length ?? 0) / need.gpus!))
  return n
}

/** How many replicas a meshlet's total capacity could hold at once (at least 1 if feasible). */
export function maxSlots(workload: WorkloadRecord, capacity: CapacityRecord): number {
  if (!workload.allowPacking) return 1
  return Math.max(1, Math.min(copiesOfRequest(workload, capacity), workload.replicas))
}
