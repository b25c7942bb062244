// Who may run what on a meshlet, and at which trust tier: ownership, cluster membership
// and share grants, as pure rules over signed records (next to membership.ts). Every
// meshlet that has seen the same records reaches the same verdict, so every meshlet
// ranks the same candidates; each rule that fails has a name, which the placement lists
// in its `whyNot` (like Nomad's FilterNode(node, reason)).
//
// What depends on what runs right now (a grant's concurrent-job limit, the disk floor) is
// not a ranking rule: views may disagree on it. The meshlet answers it itself, with a
// signed decline carrying the reason (see `grantLimitRefusal` and the engine).
import { AtUri } from '@atproto/syntax'
import type { ShareGrantRecord, WorkloadRecord, WorkloadStatusRecord } from '../records/index.js'
import { acceptsWorkFrom } from './membership.js'
import { isActive } from './replica.js'
import type { PublicState, Stored } from './state.js'

// ---------------------------------------------------------------------------------------
// Trust tiers

export type Tier = 'a' | 'b' | 'c'
const TIERS: readonly Tier[] = ['a', 'b', 'c']

/** The tier a workload asks for (default a); undefined for a value no meshlet knows. */
export function tierOf(w: Pick<WorkloadRecord, 'tier'>): Tier | undefined {
  const t = w.tier ?? 'a'
  return (TIERS as readonly string[]).includes(t) ? (t as Tier) : undefined
}

export function tierAtMost(tier: Tier, ceiling: Tier): boolean {
  return TIERS.indexOf(tier) <= TIERS.indexOf(ceiling)
}

/** The most a meshlet's owner gives cluster members: scoped writes and network, never the full container. */
export const CLUSTER_TIER_CEILING: Tier = 'b'

/** A grant's tier as a ceiling; a value no meshlet knows grants the least. */
function grantCeiling(g: ShareGrantRecord): Tier {
  return (TIERS as readonly string[]).includes(g.tier) ? (g.tier as Tier) : 'a'
}

// ---------------------------------------------------------------------------------------
// Image references and the allowlist

export interface ImageRef {
  /** Fully qualified: docker.io/library/busybox, ghcr.io/acme/tool. */
  repository: string
  tag?: string
  /** algorithm:hex, hex lowercased. */
  digest?: string
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/

/**
 * Parses an image reference the way Docker resolves it: `busybox`, `library/busybox` and
 * `docker.io/library/busybox` name the same repository. Undefined when it is not a valid
 * reference (which then matches nothing).
 */
export function parseImageRef(ref: string): ImageRef | undefined {
  if (ref.length === 0 || ref.length > 512) return undefined
  let rest = ref
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) return undefined
    const colon = digest.indexOf(':')
    digest = `${digest.slice(0, colon)}:${digest.slice(colon + 1).toLowerCase()}`
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) return undefined
  }
  let domain = 'docker.io'
  let path = rest
  const slash = rest.indexOf('/')
  if (slash >= 0) {
    const first = rest.slice(0, slash)
    // Docker's rule: a first component with a dot, a port or uppercase, or `localhost`, is a registry
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) return undefined
      domain = first.toLowerCase()
      path = rest.slice(slash + 1)
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io'
  const parts = path.split('/')
  if (!parts.every((p) => PATH_COMPONENT.test(p))) return undefined
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library')
  const repository = `${domain}/${parts.join('/')}`
  if (repository.length > 255) return undefined
  return { repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) }
}

/**
 * Does an allowlist entry admit an image? Same repository, exactly (never a longer name);
 * an entry with a digest admits only that digest, one with a tag only that tag (an image
 * without tag or digest is `latest`); a bare repository admits any tag or digest of it.
 */
export function imageMatches(entry: ImageRef, image: ImageRef): boolean {
  if (entry.repository !== image.repository) return false
  if (entry.digest && entry.digest !== image.digest) return false
  if (entry.tag && entry.tag !== (image.tag ?? (image.digest ? undefined : 'latest'))) return false
  return true
}

/** An empty or absent list admits any image; an invalid reference (image or entry) matches nothing. */
export function imageAllowed(image: string, allowed: readonly string[] | undefined): boolean {
  if (!allowed?.length) return true
  const ref = parseImageRef(image)
  if (!ref) return false
  return allowed.some((e) => {
    const entry = parseImageRef(e)
    return !!entry && imageMatches(entry, ref)
  })
}

// ---------------------------------------------------------------------------------------
// Eligibility: own, cluster or grant, with the tier ceiling

/** Unused this long (no status of the meshlet's for a workload of the recipient), a grant lapses. */
export const GRANT_LAPSE_MS = 30 * 24 * 3600 * 1000
export const DEFAULT_MAX_CONCURRENT_JOBS = 1
/** How long running replicas may finish after a drain revoke, when the grant does not say. */
export const DEFAULT_DRAIN_GRACE_SECONDS: Readonly<Record<Tier, number>> = { a: 60, b: 300, c: 300 }

export type CapKind = 'cpu' | 'memory' | 'storage' | 'gpus'

/** Why a grant does not admit a workload. */
export type GrantRefusal =
  | 'revoked' // revokedAt at or before the workload's createdAt
  | 'expired' // expiresAt at or before the workload's createdAt
  | 'lapsed' // unused for 30 days before the workload's createdAt
  | 'paused' // no new work; a replica already held keeps running
  | 'image-not-allowed'
  | `over-cap:${CapKind}`
  | `capability:${'gpu' | 'storage' | 'network'}`

/** Why a meshlet is not eligible for a workload at all. */
export type Ineligible = 'not-a-member' | 'tier:above-ceiling' | 'tier:unknown' | `grant:${GrantRefusal}`

export type Eligibility =
  | { eligible: true; via: 'own' | 'cluster'; tier: Tier; grant?: undefined }
  | { eligible: true; via: 'grant'; tier: Tier; grant: Stored<ShareGrantRecord> }
  | { eligible: false; reason: Ineligible }

export interface EligibilityOptions {
  /**
   * Whether the meshlet holds a replica of this workload (a running status since it came
   * online): under a paused grant it keeps what it holds and takes nothing new.
   */
  holds?: () => boolean
  /** Grants to consider besides the state's (the engine's record of deleted ones). */
  extraGrants?: Iterable<Stored<ShareGrantRecord>>
}

/**
 * May `meshlet` (owned by `owner`, a verified link) run `workload`, and at which tier? Its
 * owner's own work at any tier (ceiling c); a cluster member's up to b; a recipient's up
 * to its grant's tier, within the grant's terms. The tier a replica runs at is the one
 * asked, which is then always allowed.
 */
export function eligibility(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string, owner: string, opts: EligibilityOptions = {}): Eligibility {
  const tier = tierOf(workload.record)
  if (!tier) return { eligible: false, reason: 'tier:unknown' }
  if (owner === workload.did) return { eligible: true, via: 'own', tier }
  let reason: Ineligible = 'not-a-member'
  if (acceptsWorkFrom(state, meshlet, workload.did)) {
    if (tierAtMost(tier, CLUSTER_TIER_CEILING)) return { eligible: true, via: 'cluster', tier }
    reason = 'tier:above-ceiling'
  }
  const grants = grantsFor(state, meshlet, owner, workload.did, opts.extraGrants)
  if (grants.length === 0) return { eligible: false, reason }
  const verdicts = grants.map((g) => ({ g, refusal: grantRefusal(state, g, workload, tier) }))
  const usable = verdicts.filter((v) => !v.refusal).map((v) => v.g)
  if (usable.length === 0) return { eligible: false, reason: verdicts[0].refusal! }
  // a grant in force first, then a revoked one (its replicas drain), then a paused one
  usable.sort((a, b) => standing(a) - standing(b) || newestFirst(a, b))
  const grant = usable[0]
  if (grant.record.paused && !opts.holds?.()) return { eligible: false, reason: 'grant:paused' }
  return { eligible: true, via: 'grant', tier, grant }
}

function standing(g: Stored<ShareGrantRecord>): number {
  return g.record.paused ? 2 : g.record.revokedAt ? 1 : 0
}

/** The grants of `meshlet` to `recipient` its owner signed, newest first. */
function grantsFor(state: PublicState, meshlet: string, owner: string, recipient: string, extra?: Iterable<Stored<ShareGrantRecord>>): Stored<ShareGrantRecord>[] {
  const signed = state.cachedLinks(['grants', meshlet, owner, recipient], () =>
    [...state.grants.values()].filter((g) => g.did === owner && g.record.meshlet === meshlet && g.record.recipient === recipient),
  )
  if (!extra) return [...signed].sort(newestFirst)
  const out = new Map<string, Stored<ShareGrantRecord>>()
  for (const g of extra) out.set(g.uri, g)
  for (const g of signed) out.set(g.uri, g)
  return [...out.values()].filter((g) => g.did === owner && g.record.meshlet === meshlet && g.record.recipient === recipient).sort(newestFirst)
}

function newestFirst(a: Stored<ShareGrantRecord>, b: Stored<ShareGrantRecord>): number {
  return Date.parse(b.record.createdAt) - Date.parse(a.record.createdAt) || (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0)
}

/**
 * Why a grant does not admit a workload, judged at the workload's createdAt (so a grant
 * that expires or is revoked later does not change how a workload made before ranks).
 * Pause is judged by the caller: it depends on what the meshlet holds.
 */
export function grantRefusal(state: PublicState, grant: Stored<ShareGrantRecord>, workload: Stored<WorkloadRecord>, tier: Tier): Ineligible | undefined {
  const g = grant.record
  const w = workload.record
  const createdAt = Date.parse(w.createdAt)
  if (g.revokedAt && !(Date.parse(g.revokedAt) > createdAt)) return 'grant:revoked'
  if (g.expiresAt && !(Date.parse(g.expiresAt) > createdAt)) return 'grant:expired'
  if (!(createdAt < grantLastUse(state, grant, createdAt) + GRANT_LAPSE_MS)) return 'grant:lapsed'
  if (!tierAtMost(tier, grantCeiling(g))) return 'tier:above-ceiling'
  if (!imageAllowed(w.image, g.allowedImages)) return 'grant:image-not-allowed'
  const over = overCap(w.resources, g.caps)
  if (over) return `grant:over-cap:${over}`
  const missing = missingCapability(w, tier, g.capabilities)
  if (missing) return `grant:capability:${missing}`
  return undefined
}

function overCap(need: WorkloadRecord['resources'], caps: ShareGrantRecord['caps']): CapKind | undefined {
  if (!caps) return undefined
  if (need.cpuMillis > caps.cpuMillis) return 'cpu'
  if (need.memoryMiB > caps.memoryMiB) return 'memory'
  if (caps.storageMiB !== undefined && (need.storageMiB ?? 0) > caps.storageMiB) return 'storage'
  if (caps.gpus !== undefined && (need.gpus ?? 0) > caps.gpus) return 'gpus'
  return undefined
}

/** A grant that lists capabilities admits only work that needs no other: GPUs, scratch storage, a network (tier b and up). */
function missingCapability(w: WorkloadRecord, tier: Tier, capabilities: readonly string[] | undefined): 'gpu' | 'storage' | 'network' | undefined {
  if (!capabilities?.length) return undefined
  if ((w.resources.gpus ?? 0) > 0 && !capabilities.includes('gpu')) return 'gpu'
  if ((w.resources.storageMiB ?? 0) > 0 && !capabilities.includes('storage')) return 'storage'
  if (tier !== 'a' && !capabilities.includes('network')) return 'network'
  return undefined
}

/**
 * When the recipient last used the grant's meshlet, as the records say: the grant's own
 * createdAt, or the latest status the meshlet wrote for any workload of the recipient.
 * Only looked at when the grant is older than the lapse period, so a fresh grant costs nothing.
 */
export function grantLastUse(state: PublicState, grant: Stored<ShareGrantRecord>, at: number): number {
  const made = Date.parse(grant.record.createdAt)
  if (at < made + GRANT_LAPSE_MS) return made
  const { meshlet, recipient } = grant.record
  const latest = state.cached(`grant-last-use\0${meshlet}\0${recipient}`, () => {
    let last = -Infinity
    for (const s of state.statuses.values()) {
      if (s.did !== meshlet || workloadOwner(s.record) !== recipient) continue
      const t = Date.parse(s.record.updatedAt)
      if (t > last) last = t
    }
    // statuses of retired workloads are gone from memory; their latest time is kept
    return Math.max(last, state.retiredStatusAt(meshlet, recipient))
  })
  return Math.max(made, latest)
}

function workloadOwner(s: WorkloadStatusRecord): string | undefined {
  try {
    return new AtUri(s.workload.uri).host
  } catch {
    return undefined
  }
}

/** A running (or paused) replica of this version, recorded since the meshlet last came online. */
export function holdsReplica(state: PublicState, workload: Stored<WorkloadRecord>, meshlet: string): boolean {
  const since = state.capacities.get(meshlet)?.record.onlineSince
  const from = since ? Date.parse(since) : -Infinity
  return state.statusesFor(workload.uri).some((s) => s.did === meshlet && s.record.workload.cid === workload.cid && isActive(s.record) && !(Date.parse(s.record.updatedAt) < from))
}

// ---------------------------------------------------------------------------------------
// The meshlet's own answers under a grant: concurrency, revocation, wall time

/** A grant's limit on concurrent replicas of its recipient. */
export function maxConcurrentJobs(g: Pick<ShareGrantRecord, 'maxConcurrentJobs'>): number {
  return g.maxConcurrentJobs ?? DEFAULT_MAX_CONCURRENT_JOBS
}

/** The decline reason when a grant's concurrent-job limit is reached, else undefined. */
export function grantLimitRefusal(g: Pick<ShareGrantRecord, 'maxConcurrentJobs'>, running: number): string | undefined {
  const max = maxConcurrentJobs(g)
  return running >= max ? `grant limit: ${max} concurrent job${max === 1 ? '' : 's'}` : undefined
}

export interface Revocation {
  /** revokedAt: no new work from then. */
  at: number
  /** The moment replicas under the grant stop: revokedAt (kill) or revokedAt + grace (drain). */
  stopAt: number
  /** The `stopped` status message once they do. */
  message: string
}

/**
 * What a revoked grant means for the replicas running under it: none if it is not
 * revoked. No new work from revokedAt; running replicas stop at once (`kill`) or when
 * the drain grace is over (`drain`, the default; grace per grant, else per tier).
 */
export function revocation(g: Pick<ShareGrantRecord, 'revokedAt' | 'onRevoke' | 'drainGraceSeconds'>, tier: Tier, defaultGrace: Partial<Record<Tier, number>> = {}): Revocation | undefined {
  if (!g.revokedAt) return undefined
  const at = Date.parse(g.revokedAt)
  if (!Number.isFinite(at)) return undefined
  if (g.onRevoke === 'kill') return { at, stopAt: at, message: 'share grant revoked (kill)' }
  const grace = g.drainGraceSeconds ?? defaultGrace[tier] ?? DEFAULT_DRAIN_GRACE_SECONDS[tier]
  return { at, stopAt: at + grace * 1000, message: `share grant revoked; drain grace of ${grace} s over` }
}

/** A replica's wall-time limit: the workload's own, capped by its grant's maxJobSeconds. */
export function jobTimeoutSeconds(w: Pick<WorkloadRecord, 'timeoutSeconds'>, g?: Pick<ShareGrantRecord, 'maxJobSeconds'>): number | undefined {
  const limits = [w.timeoutSeconds, g?.maxJobSeconds].filter((x): x is number => x !== undefined)
  return limits.length ? Math.min(...limits) : undefined
}
