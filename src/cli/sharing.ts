// Share grants, requests and denials, as an owner and as a recipient sees them. Only
// records: grants live in the lender's repo, requests in the recipient's, denials in the
// owner's. Nobody can list the whole network, so "requests addressed to me" and "grants
// given to me" are read from the repos of the DIDs this owner knows: its meshlets'
// cluster members, its grants' recipients, the owners its requests went to, and any DID
// named with --from. The meshlets enforce the grants; this only writes and reads them.
import { AtUri } from '@atproto/syntax'
import { verifyLink } from '../identity/link.js'
import { COLLECTIONS, type ShareDenialRecord, type ShareGrantRecord, type ShareRequestRecord, type WorkloadStatusRecord } from '../records/index.js'
import type { ReadRecord } from '../repo/reader.js'
import type { Tier } from '../scheduler/grants.js'
import { listedOwners } from '../scheduler/membership.js'
import type { Stored } from '../scheduler/state.js'
import { nowIso } from '../util/time.js'
import { CliError } from './errors.js'
import { grantState, lastUse, type GrantState } from './grant-state.js'
import type { OwnerSession } from './owner.js'
import { parseActor, type GrantId } from './share-args.js'

export interface GrantView {
  uri: string
  cid: string
  rkey: string
  /** The lender: the repo the grant lives in. */
  owner: string
  state: GrantState
  record: ShareGrantRecord
}

export type RequestOutcome =
  | { state: 'pending' }
  | { state: 'approved'; grant: GrantView }
  | { state: 'denied'; denial: string; reason?: string; deniedAt: string }

export interface RequestView {
  uri: string
  cid: string
  /** Who asked: the repo the request lives in. */
  recipient: string
  record: ShareRequestRecord
  outcome: RequestOutcome
}

/** A repo that could not be read, or a record in it that does not validate: skipped, and said so. */
export interface Skipped {
  where: string
  detail: string
}

export type GrantLimits = Omit<ShareGrantRecord, '$type' | 'meshlet' | 'recipient' | 'tier' | 'createdAt' | 'request'>

export class Sharing {
  /** What could not be read on the way; the commands report it. */
  readonly skipped: Skipped[] = []

  constructor(private readonly owner: OwnerSession) {}

  /** The caller: the owner logged in. */
  get me(): string {
    return this.owner.did
  }

  /**
   * A DID or handle to a DID that resolves. A handle is resolved the usual way (the
   * caller's PDS, then DNS or well-known) and accepted only if the DID's own document
   * claims it back.
   */
  async resolve(raw: unknown, flag: string): Promise<string> {
    const actor = parseActor(raw, flag)
    const idResolver = this.owner.reader.idResolver
    if ('did' in actor) {
      if (!(await this.owner.reader.pdsFor(actor.did))) throw new CliError(`${flag}: cannot resolve ${actor.did} (no DID document with a PDS)`)
      return actor.did
    }
    const did =
      (await this.owner.writer.agent.com.atproto.identity.resolveHandle({ handle: actor.handle }).then((r) => r.data.did).catch(() => undefined)) ??
      (await idResolver.handle.resolve(actor.handle).catch(() => undefined))
    if (!did) throw new CliError(`${flag}: cannot resolve the handle ${actor.handle}`)
    const doc = await idResolver.did.resolveAtprotoData(did).catch(() => undefined)
    if (doc?.handle.toLowerCase() !== actor.handle) throw new CliError(`${flag}: ${actor.handle} points to ${did}, whose DID document does not claim that handle`)
    return did
  }

  /** Refuses, with the reason, a meshlet whose link to this owner does not verify both ways. */
  async requireMyMeshlet(meshlet: string): Promise<void> {
    const link = await verifyLink(this.owner.reader, this.me, meshlet)
    if (!link.ok) throw new CliError(`${meshlet} is not one of your meshlets (${link.reason}: ${link.detail})`)
  }

  async grant(g: { meshlet: string; recipient: string; tier: Tier; limits: GrantLimits; request?: { uri: string; cid: string } }): Promise<GrantView> {
    if (g.recipient === this.me) throw new CliError('that is you: your own meshlets already run your work')
    await this.requireMyMeshlet(g.meshlet)
    const record: ShareGrantRecord = {
      $type: COLLECTIONS.shareGrant,
      meshlet: g.meshlet,
      recipient: g.recipient,
      tier: g.tier,
      ...g.limits,
      ...(g.request ? { request: g.request } : {}),
      createdAt: nowIso(),
    }
    const res = await this.owner.writer.create(COLLECTIONS.shareGrant, record)
    const rkey = new AtUri(res.uri).rkey
    return { uri: res.uri, cid: res.cid ?? '', rkey, owner: this.me, state: grantState(record, Date.now()), record }
  }

  /** Grants this owner gave, and grants given to it by the owners it knows. */
  async grants(from: string[] = []): Promise<{ given: GrantView[]; received: GrantView[] }> {
    const given = await this.readList(this.me, COLLECTIONS.shareGrant)
    const lenders = await this.knownDids(from, given)
    const received = (await Promise.all(lenders.map((d) => this.readList(d, COLLECTIONS.shareGrant)))).flatMap((list, i) =>
      list.filter((r) => r.record.recipient === this.me).map((r) => ({ ...r, owner: lenders[i] })),
    )
    return {
      given: (await this.withState(given.map((r) => ({ ...r, owner: this.me })))).sort(byCreatedThenUri),
      received: (await this.withState(received)).sort(byCreatedThenUri),
    }
  }

  /** One of this owner's grants, by rkey or URI (parsed by the caller). */
  async myGrant(id: GrantId): Promise<GrantView> {
    if (id.repo && id.repo !== this.me) throw new CliError(`at://${id.repo}/${COLLECTIONS.shareGrant}/${id.rkey} is not your grant (it lives in ${id.repo})`)
    const res = await this.owner.reader.get(this.me, COLLECTIONS.shareGrant, id.rkey)
    if (!res.ok) throw new CliError(res.reason === 'missing' ? `unknown grant: ${id.rkey} (see meshlet share list)` : res.detail)
    return (await this.withState([{ ...res.value, owner: this.me }]))[0]
  }

  async setPaused(id: GrantId, paused: boolean): Promise<{ grant: GrantView; changed: boolean }> {
    const g = await this.myGrant(id)
    if (g.record.revokedAt) throw new CliError(`grant ${g.rkey} was revoked at ${g.record.revokedAt}: write a new grant instead`)
    if (Boolean(g.record.paused) === paused) return { grant: g, changed: false }
    return { grant: await this.update(g, { ...g.record, paused }), changed: true }
  }

  /**
   * Revokes by setting revokedAt and keeping the record: the meshlet reads onRevoke from it
   * (drain by default, kill with --kill). A drain already under way can be turned into a kill.
   */
  async revoke(id: GrantId, kill: boolean): Promise<GrantView> {
    const g = await this.myGrant(id)
    const onRevoke = kill ? 'kill' : (g.record.onRevoke ?? 'drain')
    if (g.record.revokedAt) {
      if (!kill || g.record.onRevoke === 'kill') throw new CliError(`grant ${g.rkey} is already revoked (at ${g.record.revokedAt}, ${g.record.onRevoke ?? 'drain'})`)
      return this.update(g, { ...g.record, onRevoke })
    }
    return this.update(g, { ...g.record, revokedAt: nowIso(), onRevoke })
  }

  private async update(g: GrantView, record: ShareGrantRecord): Promise<GrantView> {
    this.owner.writer.markExisting(COLLECTIONS.shareGrant, g.rkey)
    const res = await this.owner.writer.put(COLLECTIONS.shareGrant, g.rkey, record)
    return (await this.withState([{ uri: res.uri, cid: res.cid ?? '', rkey: g.rkey, owner: this.me, record }]))[0]
  }

  async request(r: { owner: string; meshlet?: string; tier?: Tier; message?: string }): Promise<RequestView> {
    if (r.owner === this.me) throw new CliError('that is you: your own meshlets already run your work')
    if (r.meshlet) {
      const link = await verifyLink(this.owner.reader, r.owner, r.meshlet)
      if (!link.ok) throw new CliError(`${r.meshlet} is not ${r.owner}'s meshlet (${link.reason}: ${link.detail})`)
    }
    const record: ShareRequestRecord = {
      $type: COLLECTIONS.shareRequest,
      owner: r.owner,
      ...(r.meshlet ? { meshlet: r.meshlet } : {}),
      ...(r.tier ? { tier: r.tier } : {}),
      ...(r.message ? { message: r.message } : {}),
      createdAt: nowIso(),
    }
    const res = await this.owner.writer.create(COLLECTIONS.shareRequest, record)
    return { uri: res.uri, cid: res.cid ?? '', recipient: this.me, record, outcome: { state: 'pending' } }
  }

  /** Requests addressed to this owner, from the recipients it knows, with its answers. */
  async incoming(from: string[] = []): Promise<RequestView[]> {
    const [grants, denials] = await Promise.all([this.readList(this.me, COLLECTIONS.shareGrant), this.readList(this.me, COLLECTIONS.shareDenial)])
    const askers = await this.knownDids(from, grants)
    const requests = (await Promise.all(askers.map((d) => this.readList(d, COLLECTIONS.shareRequest)))).flatMap((list, i) =>
      list.filter((r) => r.record.owner === this.me).map((r) => ({ ...r, recipient: askers[i] })),
    )
    const answers = await this.answers(grants.map((g) => ({ ...g, owner: this.me })), denials)
    return sortRequests(requests.map((r) => ({ uri: r.uri, cid: r.cid, recipient: r.recipient, record: r.record, outcome: answers(r.uri) })))
  }

  /** This recipient's own requests, each with the owner's answer read from the owner's repo. */
  async mine(): Promise<RequestView[]> {
    const requests = await this.readList(this.me, COLLECTIONS.shareRequest)
    const owners = [...new Set(requests.map((r) => r.record.owner))].sort()
    const byOwner = new Map(
      await Promise.all(
        owners.map(async (o) => {
          const [grants, denials] = await Promise.all([this.readList(o, COLLECTIONS.shareGrant), this.readList(o, COLLECTIONS.shareDenial)])
          const toMe = grants.filter((g) => g.record.recipient === this.me).map((g) => ({ ...g, owner: o }))
          return [o, await this.answers(toMe, denials.filter((d) => d.record.recipient === this.me))] as const
        }),
      ),
    )
    return sortRequests(requests.map((r) => ({ uri: r.uri, cid: r.cid, recipient: this.me, record: r.record, outcome: byOwner.get(r.record.owner)!(r.uri) })))
  }

  /** A request addressed to this owner, read from the recipient's repo, with its answer so far. */
  async requestToMe(at: AtUri): Promise<RequestView> {
    const res = await this.owner.reader.get(at.host, COLLECTIONS.shareRequest, at.rkey)
    if (!res.ok) throw new CliError(res.reason === 'missing' ? `unknown share request: ${at.toString()}` : res.detail)
    if (res.value.record.owner !== this.me) throw new CliError(`${res.value.uri} asks ${res.value.record.owner}, not you`)
    const [grants, denials] = await Promise.all([this.readList(this.me, COLLECTIONS.shareGrant), this.readList(this.me, COLLECTIONS.shareDenial)])
    const answers = await this.answers(grants.map((g) => ({ ...g, owner: this.me })), denials)
    return { uri: res.value.uri, cid: res.value.cid, recipient: at.host, record: res.value.record, outcome: answers(res.value.uri) }
  }

  /** Writes the grant that answers a request (its `request` field references it). */
  async approve(at: AtUri, g: { meshlet?: string; tier?: Tier; limits: GrantLimits }): Promise<GrantView> {
    const req = await this.requestToMe(at)
    if (req.outcome.state === 'approved' && req.outcome.grant.state !== 'revoked') throw new CliError(`already approved: ${req.outcome.grant.uri}`)
    const meshlet = g.meshlet ?? req.record.meshlet
    if (!meshlet) throw new CliError('missing --meshlet (the request names none)')
    const tier = g.tier ?? (req.record.tier as Tier | undefined)
    if (!tier) throw new CliError('missing --tier (the request names none)')
    return this.grant({ meshlet, recipient: req.recipient, tier, limits: g.limits, request: { uri: req.uri, cid: req.cid } })
  }

  async deny(at: AtUri, reason?: string): Promise<{ uri: string; request: RequestView; record: ShareDenialRecord }> {
    const req = await this.requestToMe(at)
    if (req.outcome.state === 'approved' && req.outcome.grant.state !== 'revoked') {
      throw new CliError(`already approved by ${req.outcome.grant.uri}: revoke that grant instead (meshlet share revoke ${req.outcome.grant.rkey})`)
    }
    if (req.outcome.state === 'denied') throw new CliError(`already denied at ${req.outcome.deniedAt}: ${req.outcome.denial}`)
    const record: ShareDenialRecord = {
      $type: COLLECTIONS.shareDenial,
      request: { uri: req.uri, cid: req.cid },
      recipient: req.recipient,
      ...(reason ? { reason } : {}),
      createdAt: nowIso(),
    }
    const res = await this.owner.writer.create(COLLECTIONS.shareDenial, record)
    return { uri: res.uri, request: { ...req, outcome: { state: 'denied', denial: res.uri, ...(reason ? { reason } : {}), deniedAt: record.createdAt } }, record }
  }

  /**
   * The answer to each request: the latest of the grants and denials referencing it (an
   * owner may deny, then change their mind and grant, or revoke and then deny).
   */
  private async answers(grants: (ReadRecord<typeof COLLECTIONS.shareGrant> & { owner: string })[], denials: ReadRecord<typeof COLLECTIONS.shareDenial>[]) {
    const views = await this.withState(grants.filter((g) => g.record.request))
    return (requestUri: string): RequestOutcome => {
      const g = views.filter((v) => v.record.request!.uri === requestUri).sort(byCreated).pop()
      const d = denials.filter((x) => x.record.request.uri === requestUri).sort(byCreated).pop()
      if (g && (!d || g.record.createdAt >= d.record.createdAt)) return { state: 'approved', grant: g }
      if (d) return { state: 'denied', denial: d.uri, ...(d.record.reason ? { reason: d.record.reason } : {}), deniedAt: d.record.createdAt }
      return { state: 'pending' }
    }
  }

  /**
   * The DIDs this owner knows, besides itself: the members its meshlets' cluster records
   * list, the recipients of its grants, the owners its requests went to, and `from`.
   */
  private async knownDids(from: string[], myGrants: ReadRecord<typeof COLLECTIONS.shareGrant>[]): Promise<string[]> {
    const known = new Set(from)
    for (const g of myGrants) known.add(g.record.recipient)
    for (const r of await this.readList(this.me, COLLECTIONS.shareRequest)) known.add(r.record.owner)
    const { state, meshlets } = await this.owner.view()
    for (const m of meshlets) for (const member of listedOwners(state, m).keys()) known.add(member)
    known.delete(this.me)
    return [...known].sort()
  }

  /** Grant states; the lending meshlet's status records are read only where a grant could have lapsed. */
  private async withState(grants: (ReadRecord<typeof COLLECTIONS.shareGrant> & { owner: string })[]): Promise<GrantView[]> {
    const now = Date.now()
    const statuses = new Map<string, Promise<Stored<WorkloadStatusRecord>[]>>()
    const statusesOf = (meshlet: string) => {
      let p = statuses.get(meshlet)
      if (!p) statuses.set(meshlet, (p = this.readList(meshlet, COLLECTIONS.workloadStatus).then((l) => l.map((r) => ({ ...r, did: meshlet })))))
      return p
    }
    return Promise.all(
      grants.map(async (g) => {
        const stored = { uri: g.uri, cid: g.cid, did: g.owner, rkey: g.rkey, record: g.record }
        const couldLapse = grantState(g.record, now) === 'lapsed'
        const used = couldLapse ? lastUse(stored, await statusesOf(g.record.meshlet), now) : undefined
        return { uri: g.uri, cid: g.cid, rkey: g.rkey, owner: g.owner, state: grantState(g.record, now, used), record: g.record }
      }),
    )
  }

  /** A collection's valid records; an unreadable repo or an invalid record is skipped and noted. */
  private async readList<C extends typeof COLLECTIONS.shareGrant | typeof COLLECTIONS.shareRequest | typeof COLLECTIONS.shareDenial | typeof COLLECTIONS.workloadStatus>(
    did: string,
    collection: C,
  ): Promise<ReadRecord<C>[]> {
    try {
      const { records, invalid } = await this.owner.reader.list(did, collection)
      for (const i of invalid) this.skipped.push({ where: i.uri, detail: i.error })
      return records
    } catch (err) {
      // one's own repo must be readable: anything else is an answer built on a guess
      if (did === this.me) throw err
      this.skipped.push({ where: `${did} ${collection}`, detail: (err as Error).message.split('\n')[0] })
      return []
    }
  }
}

const byCreated = (a: { record: { createdAt: string } }, b: { record: { createdAt: string } }) => (a.record.createdAt < b.record.createdAt ? -1 : a.record.createdAt > b.record.createdAt ? 1 : 0)

const byCreatedThenUri = (a: { uri: string; record: { createdAt: string } }, b: { uri: string; record: { createdAt: string } }) =>
  byCreated(a, b) || (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0)

function sortRequests(list: RequestView[]): RequestView[] {
  return list.sort(byCreatedThenUri)
}
