// The flags of `meshlet share ...` turned into record fields: tier, per-job caps (the same
// resource syntax as a workload spec), expiry, revoke policy. Pure: no I/O, so every
// mistake is a one-line CliError before anything is read or written.
import { AtUri, isValidDid, isValidHandle, isValidRecordKey } from '@atproto/syntax'
import { COLLECTIONS, type Resources, type ShareGrantRecord } from '../records/index.js'
import type { Tier } from '../scheduler/grants.js'
import type { Values } from './command.js'
import { CliError } from './errors.js'
import { parseSpec, SpecError } from './spec.js'

const TIERS: readonly Tier[] = ['a', 'b', 'c']

export function parseTier(raw: unknown, flag = '--tier'): Tier {
  if (typeof raw === 'string' && (TIERS as readonly string[]).includes(raw.toLowerCase())) return raw.toLowerCase() as Tier
  throw new CliError(`${flag} must be a, b or c, not ${JSON.stringify(raw ?? '')}`)
}

/** A DID or a handle, checked for shape only (resolving is the session's job). */
export function parseActor(raw: unknown, flag: string): { did: string } | { handle: string } {
  if (typeof raw !== 'string' || !raw) throw new CliError(`missing ${flag}`)
  if (raw.startsWith('did:')) {
    if (!isValidDid(raw)) throw new CliError(`${flag}: not a valid DID: ${raw}`)
    return { did: raw }
  }
  const handle = raw.replace(/^@/, '').toLowerCase()
  if (!isValidHandle(handle)) throw new CliError(`${flag} must be a DID or a handle, not ${JSON.stringify(raw)}`)
  return { handle }
}

export function parseDid(raw: unknown, flag: string): string {
  if (raw === undefined || raw === '') throw new CliError(`missing ${flag}`)
  if (typeof raw !== 'string' || !isValidDid(raw)) throw new CliError(`${flag} must be a DID, not ${JSON.stringify(raw ?? '')}`)
  return raw
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }

/** `--expires 30d` (s, m, h, d, w from now) or an ISO date; never in the past. */
export function parseExpires(raw: string, now: number): string {
  const rel = /^(\d+)\s*([smhdw])$/i.exec(raw.trim())
  const at = rel ? now + Number(rel[1]) * UNIT_SECONDS[rel[2].toLowerCase()] * 1000 : isoDate(raw)
  if (at === undefined || !Number.isFinite(at)) throw new CliError(`--expires must be a duration like 7d, 12h or 30m, or an ISO date, not ${JSON.stringify(raw)}`)
  if (at <= now) throw new CliError(`--expires ${raw} is not in the future`)
  return new Date(at).toISOString()
}

function isoDate(raw: string): number | undefined {
  // only ISO 8601 (a date, optionally a time): Date.parse alone takes "1" or "May 5" too
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw.trim())) return undefined
  return Date.parse(raw.trim())
}

export function parseCount(raw: unknown, flag: string, { min, max }: { min: number; max: number }): number | undefined {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new CliError(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`)
  }
  return n
}

/**
 * Per-job caps from --cpu/--memory/--storage/--gpus, in the workload spec's syntax (0.5 or
 * 500m; 512Mi, 2Gi). The lexicon's resources need cpu and memory, so caps name both.
 */
export function parseCaps(v: Values): Resources | undefined {
  const given = ['cpu', 'memory', 'storage', 'gpus'].filter((k) => v[k] !== undefined)
  if (given.length === 0) return undefined
  if (v.cpu === undefined || v.memory === undefined) throw new CliError('per-job caps need both --cpu and --memory (with --storage and --gpus optional)')
  const gpus = parseCount(v.gpus, '--gpus', { min: 0, max: 64 })
  try {
    // the spec parser is the one definition of the resource syntax
    const { record } = parseSpec({
      image: 'caps',
      resources: { cpu: v.cpu, memory: v.memory, ...(v.storage !== undefined ? { storage: v.storage } : {}), ...(gpus !== undefined ? { gpus } : {}) },
    })
    return record.resources
  } catch (err) {
    if (err instanceof SpecError) throw new CliError(err.message.replace(/resources\.(\w+)/, '--$1'))
    throw err
  }
}

/** The limits shared by `share grant` and `share approve`, as grant record fields. */
export function grantLimits(v: Values, now: number): Omit<ShareGrantRecord, 'meshlet' | 'recipient' | 'tier' | 'createdAt' | '$type'> {
  const images = (v.image as string[] | undefined) ?? []
  for (const i of images) if (!i.trim() || /\s/.test(i)) throw new CliError(`--image must be an image reference, not ${JSON.stringify(i)}`)
  const onRevoke = v['on-revoke']
  if (onRevoke !== undefined && onRevoke !== 'drain' && onRevoke !== 'kill') throw new CliError(`--on-revoke must be drain or kill, not ${JSON.stringify(onRevoke)}`)
  const caps = parseCaps(v)
  const maxJobs = parseCount(v['max-jobs'], '--max-jobs', { min: 1, max: 1024 })
  const maxJobSeconds = parseCount(v['max-job-seconds'], '--max-job-seconds', { min: 1, max: 2_592_000 })
  const minFreeDiskMiB = parseCount(v['min-free-disk'], '--min-free-disk', { min: 0, max: Number.MAX_SAFE_INTEGER })
  const drainGraceSeconds = parseCount(v['drain-grace'], '--drain-grace', { min: 0, max: 86_400 })
  return {
    ...(images.length ? { allowedImages: images } : {}),
    // written out even at its default: a reader of the record sees the limit without knowing the default
    maxConcurrentJobs: maxJobs ?? 1,
    ...(caps ? { caps } : {}),
    ...(maxJobSeconds !== undefined ? { maxJobSeconds } : {}),
    ...(minFreeDiskMiB !== undefined ? { minFreeDiskMiB } : {}),
    ...(typeof v.expires === 'string' ? { expiresAt: parseExpires(v.expires, now) } : {}),
    ...(onRevoke ? { onRevoke } : {}),
    ...(drainGraceSeconds !== undefined ? { drainGraceSeconds } : {}),
  }
}

/** A grant as named on the command line: its record key, and its repo when given as a URI. */
export interface GrantId {
  rkey: string
  repo?: string
}

/** A grant named by its record key (in the caller's repo) or its at:// URI. */
export function parseGrantId(raw: string | undefined): GrantId {
  if (!raw) throw new CliError('missing the grant: its record key or at:// URI (see meshlet share list)')
  if (!raw.startsWith('at://')) {
    if (!isValidRecordKey(raw)) throw new CliError(`not a record key or at:// URI: ${raw}`)
    return { rkey: raw }
  }
  const at = parseAtUri(raw)
  if (at.collection !== COLLECTIONS.shareGrant || !at.rkey) throw new CliError(`not a share grant URI: ${raw}`)
  return { rkey: at.rkey, repo: at.host }
}

export function parseRequestUri(raw: string | undefined): AtUri {
  if (!raw) throw new CliError('missing the share request\'s at:// URI (see meshlet share requests)')
  const at = parseAtUri(raw)
  if (at.collection !== COLLECTIONS.shareRequest || !at.rkey || !isValidDid(at.host)) throw new CliError(`not a share request URI: ${raw}`)
  return at
}

function parseAtUri(raw: string): AtUri {
  try {
    return new AtUri(raw)
  } catch {
    throw new CliError(`not an at:// URI: ${raw}`)
  }
}
