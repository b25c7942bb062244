// Who is in a cluster with whom, computed from public records only, so every meshlet
// that has seen the same records reaches the same answer.
import type { PublicState } from './state.js'

/** The owner of a meshlet, if both halves of the link agree. */
export function verifiedOwner(state: PublicState, meshletDid: string): string | undefined {
  return state.cachedLinks(['owner', meshletDid], () => computeVerifiedOwner(state, meshletDid))
}

function computeVerifiedOwner(state: PublicState, meshletDid: string): string | undefined {
  const back = state.meshletOwners.get(meshletDid)
  if (!back) return undefined
  const owner = back.record.owner
  return state.claimsOf(meshletDid).some((m) => m.did === owner) ? owner : undefined
}

/** Meshlets an owner claims that also claim the owner back, sorted. */
export function verifiedMeshlets(state: PublicState, ownerDid: string): string[] {
  const out = new Set<string>()
  for (const m of state.meshletsOf(ownerDid)) {
    if (state.meshletOwners.get(m.record.meshlet)?.record.owner === ownerDid) out.add(m.record.meshlet)
  }
  return [...out].sort()
}

/** Owner DIDs a meshlet lists in any of its cluster records. */
export function listedOwners(state: PublicState, meshletDid: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const c of state.clustersOf(meshletDid)) {
    for (const member of c.record.members) {
      const names = out.get(member) ?? []
      names.push(c.rkey)
      out.set(member, names)
    }
  }
  return out
}

/**
 * Does meshlet `meshletDid` accept work from `ownerDid`, mutually? Its link verifies,
 * it lists that owner in a cluster record, and one of that owner's verified meshlets
 * lists this meshlet's owner back. An owner's own meshlets always accept its work.
 */
export function acceptsWorkFrom(state: PublicState, meshletDid: string, ownerDid: string): boolean {
  return state.cachedLinks(['accepts', meshletDid, ownerDid], () => computeAcceptsWorkFrom(state, meshletDid, ownerDid))
}

function computeAcceptsWorkFrom(state: PublicState, meshletDid: string, ownerDid: string): boolean {
  const myOwner = verifiedOwner(state, meshletDid)
  if (!myOwner) return false
  if (myOwner === ownerDid) return true
  if (!listedOwners(state, meshletDid).has(ownerDid)) return false
  return verifiedMeshlets(state, ownerDid).some((m) => listedOwners(state, m).has(myOwner))
}

export type MemberVerdict =
  | { owner: string; clusters: string[]; verified: true; meshlets: string[] }
  | { owner: string; clusters: string[]; verified: false; reason: MemberFailure }

export type MemberFailure =
  | 'self-unlinked' // this meshlet's own owner link does not verify
  | 'no-verified-meshlet' // the member has no meshlet whose link verifies both ways
  | 'not-mutual' // none of the member's meshlets lists our owner

/** The membership of one meshlet's clusters, member by member, with reasons. */
export function clusterMembership(state: PublicState, meshletDid: string): MemberVerdict[] {
  const myOwner = verifiedOwner(state, meshletDid)
  const listed = listedOwners(state, meshletDid)
  const verdicts: MemberVerdict[] = []
  for (const owner of [...listed.keys()].sort()) {
    const clusters = listed.get(owner)!.sort()
    if (!myOwner) {
      verdicts.push({ owner, clusters, verified: false, reason: 'self-unlinked' })
      continue
    }
    const theirs = verifiedMeshlets(state, owner)
    if (theirs.length === 0) {
      verdicts.push({ owner, clusters, verified: false, reason: 'no-verified-meshlet' })
      continue
    }
    const mutual = theirs.filter((m) => listedOwners(state, m).has(myOwner))
    if (mutual.length === 0) verdicts.push({ owner, clusters, verified: false, reason: 'not-mutual' })
    else verdicts.push({ owner, clusters, verified: true, meshlets: mutual })
  }
  return verdicts
}

/** Verified member owners, per cluster name. */
export function verifiedClusters(state: PublicState, meshletDid: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const v of clusterMembership(state, meshletDid)) {
    if (!v.verified) continue
    for (const c of v.clusters) out.set(c, [...(out.get(c) ?? []), v.owner])
  }
  return out
}
