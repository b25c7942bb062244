// What the driver is asked to run for one replica of a workload record: image, command,
// environment with this meshlet's sealed secrets opened, limits and tier.
import type { ReplicaSpec } from '../executor/types.js'
import type { WorkloadRecord } from '../records/index.js'
import type { Stored } from '../scheduler/state.js'

/** `open` returns a secret's value, or undefined when it does not open with our key (it is left out). */
export function replicaSpec(
  workload: Stored<WorkloadRecord>,
  replica: number,
  meshletDid: string,
  open: (name: string, ciphertext: string) => string | undefined,
): ReplicaSpec {
  const w = workload.record
  const secrets: Record<string, string> = {}
  for (const s of w.secrets ?? []) {
    if (s.meshlet !== meshletDid) continue
    const value = open(s.name, s.ciphertext)
    if (value !== undefined) secrets[s.name] = value
  }
  return {
    workloadUri: workload.uri,
    replica,
    meshletDid,
    image: w.image,
    command: w.command,
    env: { ...Object.fromEntries((w.env ?? []).map((e) => [e.name, e.value])), ...secrets },
    cpuMillis: w.resources.cpuMillis,
    memoryMiB: w.resources.memoryMiB,
    storageMiB: w.resources.storageMiB,
    gpus: w.resources.gpus,
    tier: (w.tier as ReplicaSpec['tier']) ?? 'a',
    timeoutSeconds: w.timeoutSeconds,
  }
}
