// The appview's indexer: every commune.scheduler.* record of a commune, in the store and
// in a PublicState (so the placement function can explain each workload).
//
// Repos: the seeds, then whatever their records name (discovery.ts), transitively. Each
// new repo is backfilled with a verified getRepo snapshot; from then on the firehose
// carries its commits. While a repo's snapshot is being taken its live events wait in a
// buffer, and are applied in order once the snapshot is in: those at or before the
// snapshot's rev are already in it and are dropped. A replay from an older cursor (after
// a restart or a reconnect) is dropped the same way, by rev, so applying is idempotent.
//
// Sources: the relays or PDSes given, or else the PDS of every repo (found in its DID
// document). A subscription with no cursor yet starts at the live head, and a snapshot
// read while it was still connecting could miss a commit in between: repos backfilled
// in a source's first seconds are checked once more against getLatestCommit after it.
import type { IdResolver } from '@atproto/identity'
import type { CommitEvt, SyncEvt } from '@atproto/sync'
import { isValidDid } from '@atproto/syntax'
import type { Logger } from 'pino'
import { COLLECTIONS, isSchedulerCollection, validateRecord, type Collection, type RecordTypes, type WorkloadStatusRecord } from '../records/index.js'
import type { PlacementOptions } from '../scheduler/placement.js'
import { isFinal } from '../scheduler/replica.js'
import { PublicState } from '../scheduler/state.js'
import { BoundedPool } from '../util/pool.js'
import { BackfillError, fetchRepo, latestRev, type RepoSnapshot } from './backfill.js'
import { references, repoOf } from './discovery.js'
import { FirehoseSource, firehoseUrl } from './firehose.js'
import type { AppviewMetrics, MetricsSource } from './metrics.js'
import type { AppviewStore, HistoryRow, InvalidRow, RecordRow } from './store.js'
import { Summaries } from './summaries.js'

export interface IndexerOptions {
  store: AppviewStore
  idResolver: IdResolver
  logger: Logger
  /** Owner or meshlet DIDs the commune is found from (kept in the store: a restart needs none). */
  seeds?: string[]
  /** Relay or PDS URLs; when empty, the PDS of every repo is followed. */
  firehose?: string[]
  metrics?: AppviewMetrics
  now?: () => number
  placement?: PlacementOptions
  /** The commune's size limit: a record naming thousands of DIDs cannot make the appview crawl the network. */
  maxRepos?: number
  backfillConcurrency?: number
  reconnectDelayMs?: number
  /** How long after a source starts dialling a snapshot may still have missed a commit (default 5 s). */
  connectGraceMs?: number
  /** Live events kept per repo while its snapshot is taken; beyond, they are dropped and another snapshot is taken. */
  bufferLimit?: number
  /** false: backfill only, no firehose (a one-shot read of the commune, e.g. `meshlet ledger --seed`). */
  follow?: boolean
  /** How a snapshot is read (default: a verified getRepo from the repo's PDS); a seam for tests and other transports. */
  readRepo?: (pds: string, did: string) => Promise<RepoSnapshot>
}

export type RepoPhase = 'pending' | 'backfilling' | 'ready' | 'failed'

interface RepoEntry {
  did: string
  status: RepoPhase
  snapshotRev?: string
  rev?: string
  pds?: string
  buffer: CommitEvt[]
  /** Buffered events were dropped, or another snapshot was asked for, while one was under way. */
  again: boolean
  attempts: number
  error?: string
}

export interface IndexerStats {
  backfills: number
  backfillRecords: number
  backfillFailures: number
  firehoseApplied: number
  invalid: number
  /** Live events that waited for their repo's snapshot. */
  buffered: number
  dropped: number
}

export class Indexer implements MetricsSource {
  readonly state = new PublicState()
  readonly summaries: Summaries
  readonly stats: IndexerStats = { backfills: 0, backfillRecords: 0, backfillFailures: 0, firehoseApplied: 0, invalid: 0, buffered: 0, dropped: 0 }
  /** Bumped on every change the queries can see. */
  version = 0
  private repos = new Map<string, RepoEntry>()
  private sources = new Map<string, FirehoseSource>()
  private pool: BoundedPool
  private inflight = new Set<Promise<void>>()
  private timers = new Set<NodeJS.Timeout>()
  private listeners = new Set<() => void>()
  private started = false
  private closed = false
  private warnedFull = false
  private readonly now: () => number

  constructor(private readonly opts: IndexerOptions) {
    this.now = opts.now ?? Date.now
    this.pool = new BoundedPool(opts.backfillConcurrency ?? 4)
    this.summaries = new Summaries({
      state: this.state,
      store: opts.store,
      logger: opts.logger,
      now: this.now,
      placement: opts.placement,
      onFlushed: () => this.notify(),
    })
    opts.metrics?.bind(this)
  }

  /** Restores what earlier runs indexed, finds the commune, backfills what is new, and follows the firehose. Resolves once every known repo was tried. */
  async start(): Promise<void> {
    const { store } = this.opts
    for (const r of await store.repos()) {
      // a snapshot that was under way when the last run stopped is taken again
      this.repos.set(r.did, { did: r.did, status: r.status === 'ready' ? 'ready' : 'pending', snapshotRev: r.snapshotRev, rev: r.rev, pds: r.pds, buffer: [], again: false, attempts: 0 })
    }
    const restored: { collection: Collection; record: RecordTypes[Collection] }[] = []
    for (const row of await store.allRecords()) {
      const valid = validateRecord(row.collection, JSON.parse(row.json))
      if (!valid.ok) continue
      this.state.put(row.collection, { uri: row.uri, cid: row.cid, did: row.did, rkey: row.rkey, record: valid.record })
      restored.push({ collection: row.collection, record: valid.record })
    }
    await this.summaries.load()
    const seeds = [...new Set([...(await store.seeds()), ...(this.opts.seeds ?? [])])]
    const bad = seeds.find((d) => !isValidDid(d))
    if (bad) throw new Error(`not a DID: ${bad}`)
    await store.addSeeds(seeds)
    if (this.opts.follow !== false) for (const url of this.opts.firehose ?? []) this.source(url)
    for (const did of seeds) this.ensureRepo(did)
    for (const r of restored) this.discover(r.collection, r.record)
    this.started = true
    for (const entry of this.repos.values()) {
      if (entry.status === 'ready') await this.follow(entry)
      else this.backfill(entry)
    }
    await this.settled()
    await this.summaries.flush()
  }

  /** Resolves when no backfill is under way or waiting (failed repos are retried later, without blocking). */
  async settled(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
  }

  /** Everything received has been indexed and summarised. */
  async idle(): Promise<void> {
    await this.settled()
    await this.summaries.flush()
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  repoStatus(did: string): RepoPhase | undefined {
    return this.repos.get(did)?.status
  }

  repoList(): { did: string; status: RepoPhase; rev?: string; pds?: string; error?: string }[] {
    return [...this.repos.values()].map((r) => ({ did: r.did, status: r.status, rev: r.rev, pds: r.pds, error: r.error }))
  }

  sourceUrls(): string[] {
    return [...this.sources.keys()]
  }

  private notify(): void {
    this.version++
    for (const fn of this.listeners) {
      try {
        fn()
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'change listener failed')
      }
    }
  }

  /** Adds a repo to the commune (once); it is backfilled when the indexer runs. */
  private ensureRepo(did: string): void {
    if (this.repos.has(did) || !isValidDid(did)) return
    if (this.repos.size >= (this.opts.maxRepos ?? 10_000)) {
      if (!this.warnedFull) this.opts.logger.warn({ did, max: this.opts.maxRepos ?? 10_000 }, 'commune too large: repo not indexed')
      this.warnedFull = true
      return
    }
    const entry: RepoEntry = { did, status: 'pending', buffer: [], again: false, attempts: 0 }
    this.repos.set(did, entry)
    if (this.started) this.backfill(entry)
  }

  private discover<C extends Collection>(collection: C, record: RecordTypes[C]): void {
    for (const did of references(collection, record)) this.ensureRepo(did)
  }

  /** Takes a snapshot of the repo (again, if one is under way: it runs once more after). */
  private backfill(entry: RepoEntry): void {
    if (this.closed) return
    if (entry.status === 'backfilling') {
      entry.again = true
      return
    }
    // from now on its live events wait for the snapshot
    entry.status = 'backfilling'
    const job = this.pool.run(() => this.takeSnapshots(entry))
    this.inflight.add(job)
    void job.finally(() => this.inflight.delete(job))
  }

  private async takeSnapshots(entry: RepoEntry): Promise<void> {
    const { store, logger, metrics } = this.opts
    const t0 = performance.now()
    try {
      do {
        entry.again = false
        const pds = await this.pdsOf(entry.did)
        if (this.closed) return
        entry.pds = pds
        await this.follow(entry)
        const snap = await (this.opts.readRepo ?? ((p, d) => fetchRepo(this.opts.idResolver, p, d)))(pds, entry.did)
        if (this.closed) return
        const before = await store.recordsOf(entry.did)
        const { rows, invalid, history, records } = this.validated(entry.did, snap.records)
        await store.replaceRepo(entry.did, { rev: snap.rev, records: rows, invalid, history })
        if (this.closed) return
        // the state follows the store: what the snapshot no longer has goes, the rest is put
        const kept = new Set(rows.map((r) => r.uri))
        for (const uri of before.keys()) if (!kept.has(uri)) this.remove(collectionOf(uri), uri)
        for (const r of records) {
          if (this.state.put(r.collection, r.stored)) this.changed(r.collection, r.stored.uri, r.stored.record)
          this.discover(r.collection, r.stored.record)
          metrics?.indexed.inc({ collection: r.collection, via: 'backfill' })
        }
        entry.snapshotRev = entry.rev = snap.rev
        this.stats.backfills++
        this.stats.backfillRecords += rows.length
        metrics?.backfills.inc({ outcome: 'ok' })
        // live events that arrived meanwhile, in order; more may arrive while these are
        // written. Ready is persisted only once they are in: a crash before that takes a
        // new snapshot at the next start (the cursor may already be past them).
        for (;;) {
          while (entry.buffer.length && !this.closed && !entry.again) await this.apply(entry, entry.buffer.shift()!)
          if (entry.again || this.closed) break
          await store.putRepo({ did: entry.did, status: 'ready', snapshotRev: entry.snapshotRev, rev: entry.rev, pds })
          if (entry.buffer.length === 0) break
        }
      } while (entry.again && !this.closed)
      if (this.closed) return
      entry.status = 'ready'
      entry.attempts = 0
      entry.error = undefined
      metrics?.backfillSeconds.observe((performance.now() - t0) / 1000)
      this.recheckAfterConnect(entry)
    } catch (err) {
      if (this.closed) return
      entry.status = 'failed'
      entry.attempts++
      entry.error = err instanceof BackfillError ? err.message : `${(err as Error).message}`
      this.stats.backfillFailures++
      metrics?.backfills.inc({ outcome: 'failed' })
      logger.warn({ did: entry.did, err: entry.error, attempt: entry.attempts }, 'backfill failed; retrying later')
      await store.putRepo({ did: entry.did, status: 'failed', snapshotRev: entry.snapshotRev, rev: entry.rev, pds: entry.pds, error: entry.error.slice(0, 500) }).catch(() => undefined)
      this.later(Math.min(5000 * 2 ** (entry.attempts - 1), 600_000), () => {
        if (entry.status === 'failed') this.backfill(entry)
      })
    }
  }

  /** Lexicon-validates a snapshot's records: rows for the store, invalid ones counted and skipped. */
  private validated(did: string, records: RepoSnapshot['records']) {
    const rows: RecordRow[] = []
    const invalid: InvalidRow[] = []
    const history: HistoryRow[] = []
    const out: { collection: Collection; stored: { uri: string; cid: string; did: string; rkey: string; record: RecordTypes[Collection] } }[] = []
    for (const r of records) {
      const uri = `at://${did}/${r.collection}/${r.rkey}`
      const valid = validateRecord(r.collection, r.record)
      if (!valid.ok) {
        this.countInvalid(r.collection, uri, valid.error)
        invalid.push({ uri, collection: r.collection, did, cid: r.cid, error: valid.error.slice(0, 1000) })
        continue
      }
      rows.push({ uri, collection: r.collection, did, rkey: r.rkey, cid: r.cid, json: JSON.stringify(valid.record) })
      if (r.collection === COLLECTIONS.workloadStatus) history.push(historyRow(uri, did, r.cid, valid.record as WorkloadStatusRecord))
      out.push({ collection: r.collection, stored: { uri, cid: r.cid, did, rkey: r.rkey, record: valid.record } })
    }
    return { rows, invalid, history, records: out }
  }

  private countInvalid(collection: string, uri: string, error: string): void {
    this.stats.invalid++
    this.opts.metrics?.invalid.inc({ collection })
    this.opts.logger.warn({ uri, error }, 'invalid record skipped')
  }

  private async pdsOf(did: string): Promise<string> {
    let pds: string | undefined
    try {
      pds = (await this.opts.idResolver.did.resolveAtprotoData(did)).pds
    } catch (err) {
      throw new BackfillError(`cannot resolve ${did}: ${(err as Error).message}`)
    }
    if (!pds) throw new BackfillError(`${did} names no PDS`)
    return pds
  }

  /** The sources that carry this repo: the explicit ones, or its PDS (subscribed on first sight). */
  private sourcesOf(entry: RepoEntry): FirehoseSource[] {
    if (this.opts.follow === false) return []
    if (this.opts.firehose?.length) return [...this.sources.values()]
    return entry.pds ? [this.source(entry.pds)] : []
  }

  /** Makes sure the repo's events are coming, and waits until its source is at least dialling. */
  private async follow(entry: RepoEntry): Promise<void> {
    if (this.opts.follow === false) return
    if (!this.opts.firehose?.length && !entry.pds) {
      try {
        entry.pds = await this.pdsOf(entry.did)
      } catch (err) {
        this.opts.logger.warn({ did: entry.did, err: (err as Error).message }, 'cannot follow repo')
        return
      }
    }
    await Promise.all(this.sourcesOf(entry).map((s) => s.dialled))
  }

  private source(url: string): FirehoseSource {
    const key = firehoseUrl(url)
    let s = this.sources.get(key)
    if (s) return s
    s = new FirehoseSource({
      url,
      idResolver: this.opts.idResolver,
      logger: this.opts.logger,
      reconnectDelayMs: this.opts.reconnectDelayMs,
      getCursor: () => this.opts.store.getCursor(key),
      saveCursor: (seq) => this.opts.store.setCursor(key, seq),
      handlers: {
        accepts: (did) => this.repos.has(did),
        onCommit: (src, evt) => this.onCommit(src, evt),
        onSync: (_src, evt) => this.onSync(evt),
        // the skipped record is in the repo's next snapshot, taken (and retried) as any backfill
        onKeyUnavailable: (_src, did) => {
          const entry = this.repos.get(did)
          if (entry && !this.closed) this.backfill(entry)
        },
      },
    })
    this.sources.set(key, s)
    if (!this.closed) s.start()
    return s
  }

  private async onCommit(source: string, evt: CommitEvt): Promise<void> {
    const entry = this.repos.get(evt.did)
    if (!entry || this.closed) return
    if (entry.status !== 'ready') {
      entry.buffer.push(evt)
      this.stats.buffered++
      if (entry.buffer.length > (this.opts.bufferLimit ?? 10_000)) {
        // every dropped commit predates the next snapshot, which is taken after this
        entry.buffer = []
        entry.again = true
      }
      return
    }
    try {
      await this.apply(entry, evt, { source, seq: evt.seq })
    } catch (err) {
      // the store refused it: its rev is past, so the event alone cannot be retried; the repo is read again instead
      this.opts.logger.warn({ did: entry.did, rev: evt.rev, err: (err as Error).message }, 'could not index an event; reading the repo again')
      this.backfill(entry)
    }
  }

  /** A #sync event: the repo's state was reset (e.g. it moved); take a new snapshot. */
  private async onSync(evt: SyncEvt): Promise<void> {
    const entry = this.repos.get(evt.did)
    if (!entry || (entry.rev && evt.rev <= entry.rev)) return
    this.backfill(entry)
  }

  private async apply(entry: RepoEntry, evt: CommitEvt, cursor?: { source: string; seq: number }): Promise<void> {
    const { store, metrics } = this.opts
    if (entry.snapshotRev && evt.rev <= entry.snapshotRev) {
      this.stats.dropped++
      metrics?.stale.inc({ reason: 'in-snapshot' })
      return
    }
    // several ops of one commit share its rev: only an older rev is a replay
    if (entry.rev && evt.rev < entry.rev) {
      this.stats.dropped++
      metrics?.stale.inc({ reason: 'replayed' })
      return
    }
    if (!isSchedulerCollection(evt.collection)) return
    entry.rev = evt.rev
    const collection = evt.collection
    const uri = evt.uri.toString()
    const repo = { did: entry.did, rev: evt.rev }
    if (evt.event === 'delete') {
      await store.applyCommit({ delete: uri, repo, cursor })
      this.remove(collection, uri)
    } else {
      const cid = evt.cid.toString()
      const valid = validateRecord(collection, evt.record)
      if (!valid.ok) {
        this.countInvalid(collection, uri, valid.error)
        await store.applyCommit({ invalid: { uri, collection, did: entry.did, cid, error: valid.error.slice(0, 1000) }, repo, cursor })
        return
      }
      const record = valid.record
      const history = collection === COLLECTIONS.workloadStatus ? historyRow(uri, entry.did, cid, record as WorkloadStatusRecord) : undefined
      await store.applyCommit({ put: { uri, collection, did: entry.did, rkey: evt.rkey, cid, json: JSON.stringify(record) }, history, repo, cursor })
      if (this.state.put(collection, { uri, cid, did: entry.did, rkey: evt.rkey, record })) this.changed(collection, uri, record)
      this.discover(collection, record)
    }
    this.stats.firehoseApplied++
    metrics?.indexed.inc({ collection, via: 'firehose' })
    const at = Date.parse(evt.time)
    if (Number.isFinite(at)) metrics?.indexDelay.observe(Math.max(0, this.now() - at) / 1000)
  }

  private remove(collection: Collection, uri: string): void {
    const did = repoOf(uri)!
    const rkey = uri.split('/').pop()!
    const old = this.lookup(collection, uri)
    if (this.state.delete(collection, did, rkey)) this.changed(collection, uri, old)
  }

  private lookup(collection: Collection, uri: string): unknown {
    if (collection === COLLECTIONS.bid) return this.state.bids.get(uri)?.record
    if (collection === COLLECTIONS.workloadStatus) return this.state.statuses.get(uri)?.record
    return undefined
  }

  /** Marks the summaries a change can move, and tells listeners. */
  private changed(collection: Collection, uri: string, record: unknown): void {
    switch (collection) {
      case COLLECTIONS.workload:
        this.summaries.workloadChanged(uri)
        break
      case COLLECTIONS.bid:
      case COLLECTIONS.workloadStatus: {
        const ref = (record as { workload?: { uri: string } } | undefined)?.workload?.uri
        if (ref) this.summaries.workloadChanged(ref)
        // a finished replica moves the owners' balances, which rank every open workload
        if (collection === COLLECTIONS.workloadStatus && record && isFinal(record as WorkloadStatusRecord)) this.summaries.everythingChanged()
        break
      }
      case COLLECTIONS.meshlet:
      case COLLECTIONS.meshletOwner:
      case COLLECTIONS.cluster:
      case COLLECTIONS.capacity:
      case COLLECTIONS.shareGrant:
        this.summaries.everythingChanged()
        break
    }
    this.notify()
  }

  /** A snapshot read while its source was still connecting may have missed a commit: look once more when it surely is. */
  private recheckAfterConnect(entry: RepoEntry): void {
    const grace = this.opts.connectGraceMs ?? 5000
    const dialled = this.sourcesOf(entry).map((s) => s.dialledAt ?? this.now())
    if (dialled.length === 0) return
    const safeAt = Math.max(...dialled) + grace
    if (this.now() >= safeAt) return
    this.later(safeAt - this.now(), async () => {
      if (entry.status !== 'ready' || !entry.pds) return
      const rev = await latestRev(entry.pds, entry.did)
      if (rev && entry.rev && rev > entry.rev) this.backfill(entry)
    })
  }

  private later(ms: number, fn: () => void | Promise<void>): void {
    if (this.closed) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      void Promise.resolve(fn()).catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'appview timer failed'))
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  // MetricsSource
  recordCounts(): Promise<Map<string, number>> {
    return this.opts.store.countByCollection()
  }

  invalidCounts(): Promise<Map<string, number>> {
    return this.opts.store.invalidCount()
  }

  repoCounts(): Map<string, number> {
    const out = new Map<string, number>([['pending', 0], ['backfilling', 0], ['ready', 0], ['failed', 0]])
    for (const r of this.repos.values()) out.set(r.status, (out.get(r.status) ?? 0) + 1)
    return out
  }

  sourceLag(now: number): { source: string; events: number; seconds: number }[] {
    return [...this.sources.values()].map((s) => ({
      source: s.url,
      events: s.lagEvents,
      seconds: s.pending > 0 && s.lastEventTime !== undefined ? Math.max(0, (now - s.lastEventTime) / 1000) : 0,
    }))
  }

  heartbeatAges(now: number): { meshlet: string; seconds: number }[] {
    return [...this.state.capacities.values()].map((c) => ({ meshlet: c.did, seconds: Math.max(0, (now - Date.parse(c.record.updatedAt)) / 1000) }))
  }

  workloadCounts(): Promise<{ state: string; phase: string; count: number }[]> {
    return this.opts.store.countSummaries()
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.sources.values()].map((s) => s.close()))
    await this.settled()
    await this.summaries.close()
  }
}

function historyRow(uri: string, meshlet: string, cid: string, r: WorkloadStatusRecord): HistoryRow {
  return {
    statusUri: uri,
    workloadUri: r.workload.uri,
    workloadCid: r.workload.cid,
    meshlet,
    replica: r.replica,
    state: r.state,
    at: r.updatedAt,
    cid,
    ...(r.message ? { message: r.message } : {}),
  }
}

/** The collection of an at:// record URI of this commune (the indexer only holds those). */
function collectionOf(uri: string): Collection {
  return uri.split('/')[3] as Collection
}
