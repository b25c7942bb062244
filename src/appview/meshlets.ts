// The cluster matrix: every known meshlet with its health, judged from its heartbeat
// (capacity.updatedAt) against its own stated interval. Pure: a clock comes in.
import type { MeshletView } from '../lexicon/types/commune/appview/defs.js'
import type { CapacityRecord } from '../records/index.js'
import { verifiedOwner } from '../scheduler/membership.js'
import { DEFAULT_HEARTBEAT_SECONDS, DEFAULT_SKEW_MS, HEARTBEAT_MISSES } from '../scheduler/placement.js'
import { isActive } from '../scheduler/replica.js'
import type { PublicState } from '../scheduler/state.js'
import { cmp } from './views.js'

export type Health = 'green' | 'yellow' | 'red' | 'unknown'

/**
 * Green while the heartbeat is at most one interval old, yellow up to three (the
 * protocol's HEARTBEAT_MISSES), red beyond: red is exactly when the placement counts the
 * meshlet as lost. Each bound allows the protocol's clock skew, so a meshlet that
 * heartbeats on time never flickers yellow while its next record is on its way.
 */
export function health(cap: CapacityRecord | undefined, now: number, skewMs = DEFAULT_SKEW_MS): Health {
  if (!cap) return 'unknown'
  const age = now - Date.parse(cap.updatedAt)
  const interval = (cap.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000
  if (!Number.isFinite(age)) return 'unknown'
  if (age <= interval + skewMs) return 'green'
  if (age <= HEARTBEAT_MISSES * interval + skewMs) return 'yellow'
  return 'red'
}

/** Meshlets that wrote a capacity or link record, or that an owner claims. */
export function knownMeshlets(state: PublicState): string[] {
  const dids = new Set([...state.capacities.keys(), ...state.meshletOwners.keys()])
  for (const m of state.meshlets.values()) dids.add(m.record.meshlet)
  return [...dids].sort()
}

export function meshletViews(state: PublicState, now: number, opts: { owner?: string; skewMs?: number } = {}): MeshletView[] {
  // one pass over the statuses: replicas each meshlet reports active, of workloads that still exist
  const running = new Map<string, number>()
  const paused = new Map<string, number>()
  for (const s of state.statuses.values()) {
    if (!isActive(s.record)) continue
    const w = state.workloads.get(s.record.workload.uri)
    if (!w || w.cid !== s.record.workload.cid) continue
    const m = s.record.state === 'paused' ? paused : running
    m.set(s.did, (m.get(s.did) ?? 0) + 1)
  }
  const out: MeshletView[] = []
  for (const did of knownMeshlets(state)) {
    const owner = verifiedOwner(state, did)
    if (opts.owner && owner !== opts.owner) continue
    const cap = state.capacities.get(did)?.record
    const updated = cap ? Date.parse(cap.updatedAt) : NaN
    out.push({
      did,
      ...(owner ? { owner } : {}),
      linked: owner !== undefined,
      health: health(cap, now, opts.skewMs),
      ...(cap ? { heartbeatAt: cap.updatedAt, heartbeatAgeSeconds: Math.max(0, Math.floor((now - updated) / 1000)) } : {}),
      heartbeatSeconds: cap?.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS,
      ...(cap?.onlineSince ? { onlineSince: cap.onlineSince } : {}),
      ...(cap ? { total: cap.total, allocatable: cap.allocatable } : {}),
      running: running.get(did) ?? 0,
      paused: paused.get(did) ?? 0,
      draining: cap?.draining ?? false,
      ...(cap?.declining ? { declining: cap.declining } : {}),
      ...(cap?.disk ? { disk: cap.disk } : {}),
      ...(cap?.arch ? { arch: cap.arch } : {}),
      drivers: cap?.drivers ?? [],
      ...(cap?.endpoint ? { endpoint: cap.endpoint } : {}),
      clusters: state
        .clustersOf(did)
        .map((c) => c.rkey)
        .sort(cmp),
    })
  }
  return out
}
