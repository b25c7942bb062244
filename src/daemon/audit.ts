// The meshlet's audit log: every control action, appended to a table in its LocalDb.
// XRPC calls (method, caller, outcome), pairing attempts, the share-grant changes it saw
// for itself, and what the engine stops on a revoke or kill. Local and private: the
// owner reads it over farm.meshlet.getAuditLog (or `meshlet audit`).
import type { LocalDb } from '../db/index.js'
import type { RecordChange } from '../sync/ingest.js'
import type { PublicState, Stored } from '../scheduler/state.js'
import { COLLECTIONS, type ShareGrantRecord } from '../records/index.js'
import type { Logger } from '../util/logger.js'

export interface AuditInput {
  /** What happened: an XRPC method NSID, `pairing.redeem`, `grant.revoked`, ... */
  action: string
  /** Who did it, when known: a DID (the verified caller, the grant's author). */
  actor?: string
  /** What it was done to: a workload URI, a grant's recipient, ... */
  target?: string
  /** ok, refused, error for calls; a word saying how it ended for the rest. */
  outcome: string
  detail?: Record<string, unknown>
}

/** The signature the daemon's parts (the engine included) are given to append an entry. */
export type AuditFn = (entry: AuditInput) => void

export interface AuditEntry extends AuditInput {
  id: number
  at: string
}

interface AuditRow {
  id: number
  at: string
  action: string
  actor: string | null
  target: string | null
  outcome: string
  detail: string | null
}

/** Entries kept: anyone may make a refused call, so the log is bounded; the oldest go first. */
export const AUDIT_KEEP = 100_000

export class AuditLog {
  private appended = 0

  constructor(
    private readonly db: LocalDb,
    private readonly opts: { keep?: number; now?: () => number } = {},
  ) {}

  append(e: AuditInput): AuditEntry {
    const at = new Date((this.opts.now ?? Date.now)()).toISOString()
    const detail = e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : null
    const res = this.db
      .statement('INSERT INTO audit (at, action, actor, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(at, e.action, e.actor ?? null, e.target ?? null, e.outcome, detail)
    if (++this.appended % 1000 === 0) this.prune()
    return { id: Number(res.lastInsertRowid), at, ...e }
  }

  /** Newest first; `before` is an entry id (the cursor of the previous page). */
  list(opts: { limit: number; before?: number }): { entries: AuditEntry[]; cursor?: string } {
    const rows = this.db
      .statement('SELECT id, at, action, actor, target, outcome, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?')
      .all(opts.before ?? Number.MAX_SAFE_INTEGER, opts.limit + 1) as AuditRow[]
    const page = rows.slice(0, opts.limit).map(fromRow)
    return { entries: page, ...(rows.length > opts.limit ? { cursor: String(page[page.length - 1].id) } : {}) }
  }

  prune(): void {
    const keep = this.opts.keep ?? AUDIT_KEEP
    this.db.statement('DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?').run(keep)
  }
}

function fromRow(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    action: r.action,
    ...(r.actor ? { actor: r.actor } : {}),
    ...(r.target ? { target: r.target } : {}),
    outcome: r.outcome,
    ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
  }
}

/** An AuditFn that never throws: a full disk must not turn a control call into a crash. */
export function auditTo(log: AuditLog, logger: Logger): AuditFn {
  return (entry) => {
    try {
      log.append(entry)
    } catch (err) {
      logger.error({ err: (err as Error).message, action: entry.action }, 'audit log write failed')
    }
  }
}

export type GrantChange = 'created' | 'updated' | 'paused' | 'resumed' | 'revoked' | 'deleted'

/**
 * Turns firehose changes of share grants naming this meshlet, written by its owner, into
 * audit entries (`grant.created`, `grant.paused`, ...). It remembers the last version of
 * each grant, so an update says what changed and a deletion what was deleted; it starts
 * from the grants already believed, so a restart does not report them again.
 */
export class GrantAuditor {
  private readonly known = new Map<string, ShareGrantRecord>()

  constructor(
    private readonly opts: { meshletDid: string; state: PublicState; audit: AuditFn },
  ) {
    for (const g of opts.state.grants.values()) if (this.concerns(g)) this.known.set(g.uri, g.record)
  }

  onChange(c: RecordChange): void {
    if (c.collection !== COLLECTIONS.shareGrant) return
    const before = this.known.get(c.uri)
    if (c.action === 'delete') {
      if (!before) return
      this.known.delete(c.uri)
      this.emit('deleted', c.did, c.uri, before)
      return
    }
    const now = this.opts.state.grants.get(c.uri)
    if (!now || !this.concerns(now)) {
      // no longer ours (moved to another meshlet, or its author is not our owner): gone for us
      if (before) {
        this.known.delete(c.uri)
        this.emit('deleted', c.did, c.uri, before)
      }
      return
    }
    this.known.set(c.uri, now.record)
    this.emit(classify(before, now.record), c.did, c.uri, now.record, before)
  }

  private concerns(g: Stored<ShareGrantRecord>): boolean {
    return g.record.meshlet === this.opts.meshletDid && g.did === this.opts.state.meshletOwners.get(this.opts.meshletDid)?.record.owner
  }

  private emit(change: GrantChange, author: string, uri: string, g: ShareGrantRecord, before?: ShareGrantRecord): void {
    this.opts.audit({
      action: `grant.${change}`,
      actor: author,
      target: g.recipient,
      outcome: 'seen',
      detail: {
        uri,
        tier: g.tier,
        ...(g.paused ? { paused: true } : {}),
        ...(g.revokedAt ? { revokedAt: g.revokedAt, onRevoke: g.onRevoke ?? 'drain' } : {}),
        ...(g.expiresAt ? { expiresAt: g.expiresAt } : {}),
        ...(g.maxConcurrentJobs ? { maxConcurrentJobs: g.maxConcurrentJobs } : {}),
        ...(before && change === 'updated' ? { changed: changedFields(before, g) } : {}),
      },
    })
  }
}

function classify(before: ShareGrantRecord | undefined, now: ShareGrantRecord): GrantChange {
  if (now.revokedAt && !before?.revokedAt) return 'revoked'
  if (!before) return 'created'
  if (now.paused && !before.paused) return 'paused'
  if (!now.paused && before.paused) return 'resumed'
  return 'updated'
}

function changedFields(a: ShareGrantRecord, b: ShareGrantRecord): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  return [...keys].filter((k) => JSON.stringify(a[k as keyof ShareGrantRecord]) !== JSON.stringify(b[k as keyof ShareGrantRecord])).sort()
}
