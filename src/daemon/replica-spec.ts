// What the driver is asked to run for one replica of a workload record: image, command,
// environment with this meshlet's sealed secrets opened, limits and tier.
import type { ReplicaSpec } from '../executor/types.js'
import type { WorkloadRecord } from '../records/index.js'
import type { Stored } from '../scheduler/state.js'
import { secretBinding, type SecretBinding } from '../util/x25519.js'

/**
 * Opens one sealed secret for exactly `binding` (the workload's owner and record key from
 * its own uri, the secret's name, this meshlet's DID), or returns undefined when it does
 * not open there: the secret is then left out. A value copied from another workload, or
 * sealed to another meshlet, never opens.
 */
export type OpenSecret = (name: string, ciphertext: string, binding: SecretBinding) => string | undefined

export function replicaSpec(workload: Stored<WorkloadRecord>, replica: number, meshletDid: string, open: OpenSecret): ReplicaSpec {
  const w = workload.record
  const secrets: Record<string, string> = {}
  for (const s of w.secrets ?? []) {
    if (s.meshlet !== meshletDid) continue
    const binding = bindingOf(workload.uri, s.name, meshletDid)
    const value = binding && open(s.name, s.ciphertext, binding)
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

/** Bound to where the secret was found (the workload's own uri), never to anything the record claims about itself. */
function bindingOf(workloadUri: string, name: string, meshletDid: string): SecretBinding | undefined {
  try {
    return secretBinding(workloadUri, name, meshletDid)
  } catch {
    return undefined // not a DID-hosted record uri: nothing can be bound to it, so nothing opens
  }
}
