// Where a share grant stands now, from its record and the lending meshlet's public status
// records: pure, and with the core's own lapse rule (src/scheduler/grants.ts), so the CLI
// calls a grant lapsed exactly when the meshlets refuse new work under it for that reason.
import { COLLECTIONS, type ShareGrantRecord, type WorkloadStatusRecord } from '../records/index.js'
import { GRANT_LAPSE_MS, grantLastUse } from '../scheduler/grants.js'
import { PublicState, type Stored } from '../scheduler/state.js'

export type GrantState = 'active' | 'paused' | 'expired' | 'revoked' | 'lapsed'

/**
 * When the grant was last used, as the meshlets judge it: its createdAt, or the latest
 * status the lending meshlet wrote for a workload of the recipient. `statuses` are the
 * meshlet's own records (their `did` is the meshlet).
 */
export function lastUse(grant: Stored<ShareGrantRecord>, statuses: Stored<WorkloadStatusRecord>[], now: number): number {
  const state = new PublicState()
  for (const s of statuses) state.put(COLLECTIONS.workloadStatus, s)
  return grantLastUse(state, grant, now)
}

/**
 * The first that holds, most final first: revoked (revokedAt set), expired (expiresAt
 * passed), lapsed (unused for 30 days: `lastUsed` defaults to the grant's createdAt),
 * paused, active.
 */
export function grantState(g: ShareGrantRecord, now: number, lastUsed = Date.parse(g.createdAt)): GrantState {
  if (g.revokedAt) return 'revoked'
  if (g.expiresAt && !(Date.parse(g.expiresAt) > now)) return 'expired'
  if (!(now < lastUsed + GRANT_LAPSE_MS)) return 'lapsed'
  if (g.paused) return 'paused'
  return 'active'
}
