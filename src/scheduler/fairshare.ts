// Contribution balance from public status records: cpu-seconds an owner's meshlets
// served for others minus cpu-seconds the owner's workloads consumed on others'
// meshlets. Anyone can recompute it, so no one can inflate their own by claiming it.
import { createHash } from 'node:crypto'
import type { PublicState } from './state.js'
import { verifiedOwner } from './membership.js'

/**
 * Balances in cpu-milliseconds, counting only replicas that finished before `asOf`
 * (ms since epoch): a finished replica's record no longer changes, so the balance as of
 * a workload's createdAt is the same for every meshlet that has seen those records.
 */
export function balances(state: PublicState, asOf: number, servers?: string[]): Map<string, number> {
  const key = servers ? createHash('sha256').update(servers.join(',')).digest('hex').slice(0, 16) : '*'
  return state.cached(`balances:${asOf}:${key}`, () => computeBalances(state, asOf, servers && new Set(servers)))
}

/**
 * When `servers` is given, only replicas those meshlets ran count: the candidates of a
 * workload are exactly the meshlets every meshlet ranking it follows, so all of them
 * count the same records.
 */
function computeBalances(state: PublicState, asOf: number, servers?: Set<string>): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of state.statuses.values()) {
    if (servers && !servers.has(s.did)) continue
    const r = s.record
    if (!r.cpuMillis || !r.finishedAt || Date.parse(r.finishedAt) >= asOf) continue
    const server = verifiedOwner(state, s.did)
    const consumer = ownerOfUri(r.workload.uri)
    if (!server || !consumer || server === consumer) continue
    out.set(server, (out.get(server) ?? 0) + r.cpuMillis)
    out.set(consumer, (out.get(consumer) ?? 0) - r.cpuMillis)
  }
  return out
}

export function ownerOfUri(uri: string): string | undefined {
  const m = /^at:\/\/([^/]+)\//.exec(uri)
  return m?.[1]
}
