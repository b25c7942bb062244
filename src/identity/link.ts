// The two-way owner↔meshlet link: commune.scheduler.meshlet in the owner's repo and
// commune.scheduler.meshletOwner (rkey self) in the meshlet's repo.
import { ensureValidRecordKey } from '@atproto/syntax'
import { TID } from '@atproto/common-web'
import { COLLECTIONS } from '../records/index.js'
import type { RepoReader } from '../repo/reader.js'
import type { RepoWriter } from '../repo/writer.js'
import { nowIso } from '../util/time.js'

/** The owner's meshlet record is keyed by the meshlet DID when that is a valid record key. */
export function meshletRecordKey(meshletDid: string): string {
  try {
    ensureValidRecordKey(meshletDid)
    return meshletDid
  } catch {
    return TID.nextStr()
  }
}

export async function linkMeshlet(owner: RepoWriter, meshlet: RepoWriter, name?: string): Promise<void> {
  await meshlet.put(COLLECTIONS.meshletOwner, 'self', {
    $type: COLLECTIONS.meshletOwner,
    owner: owner.did,
    createdAt: nowIso(),
  })
  await owner.put(COLLECTIONS.meshlet, meshletRecordKey(meshlet.did), {
    $type: COLLECTIONS.meshlet,
    meshlet: meshlet.did,
    ...(name ? { name } : {}),
    createdAt: nowIso(),
  })
}

export type LinkFailure =
  | 'owner-unresolvable'
  | 'meshlet-unresolvable'
  | 'owner-record-missing'
  | 'meshlet-record-missing'
  | 'owner-record-invalid'
  | 'meshlet-record-invalid'
  | 'owner-mismatch'
  | 'unreachable'

export type LinkVerdict =
  | { ok: true; owner: string; meshlet: string }
  | { ok: false; owner: string; meshlet: string; reason: LinkFailure; detail: string }

/**
 * Checks both directions, each read from the PDS named in that DID's own document.
 * Never throws: every way to fail is a verdict with a reason.
 */
export async function verifyLink(reader: RepoReader, ownerDid: string, meshletDid: string): Promise<LinkVerdict> {
  const fail = (reason: LinkFailure, detail: string): LinkVerdict => ({
    ok: false,
    owner: ownerDid,
    meshlet: meshletDid,
    reason,
    detail,
  })
  const [ownerPds, meshletPds] = await Promise.all([reader.pdsFor(ownerDid), reader.pdsFor(meshletDid)])
  if (!ownerPds) return fail('owner-unresolvable', `cannot resolve owner ${ownerDid}`)
  if (!meshletPds) return fail('meshlet-unresolvable', `cannot resolve meshlet ${meshletDid}`)

  const back = await reader.get(meshletDid, COLLECTIONS.meshletOwner, 'self')
  if (!back.ok) {
    if (back.reason === 'invalid') return fail('meshlet-record-invalid', back.detail)
    if (back.reason === 'missing') return fail('meshlet-record-missing', `${meshletDid} has no meshletOwner record`)
    return fail('unreachable', back.detail)
  }
  if (back.value.record.owner !== ownerDid) {
    return fail('owner-mismatch', `${meshletDid} names ${back.value.record.owner} as its owner, not ${ownerDid}`)
  }

  let forward
  try {
    forward = await reader.list(ownerDid, COLLECTIONS.meshlet)
  } catch (err) {
    return fail('unreachable', (err as Error).message)
  }
  if (forward.records.some((r) => r.record.meshlet === meshletDid)) {
    return { ok: true, owner: ownerDid, meshlet: meshletDid }
  }
  const invalid = forward.invalid.find((r) => r.uri.endsWith(`/${meshletDid}`))
  if (invalid) return fail('owner-record-invalid', `${invalid.uri}: ${invalid.error}`)
  if (forward.invalid.length > 0 && forward.records.length === 0) {
    return fail('owner-record-invalid', `${forward.invalid[0].uri}: ${forward.invalid[0].error}`)
  }
  return fail('owner-record-missing', `${ownerDid} has no meshlet record naming ${meshletDid}`)
}
