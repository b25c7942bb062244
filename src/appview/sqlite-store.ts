// The appview's embedded store: one SQLite file (WAL). Statements are compiled once;
// every write that must land together (a record, its repo's rev, the cursor of the
// event that carried it) is one transaction.
import Database from 'better-sqlite3'
import fs from 'node:fs'
import path from 'node:path'
import type { WorkloadView } from '../lexicon/types/commune/appview/defs.js'
import type {
  AppviewStore,
  CommitWrite,
  HistoryRow,
  InvalidRow,
  RecordRow,
  RepoRow,
  RepoStatus,
  SummaryQuery,
  WorkloadSummary,
} from './store.js'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS record (
    uri TEXT PRIMARY KEY, collection TEXT NOT NULL, did TEXT NOT NULL,
    rkey TEXT NOT NULL, cid TEXT NOT NULL, json TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS record_did ON record (did);
  CREATE TABLE IF NOT EXISTS repo (
    did TEXT PRIMARY KEY, status TEXT NOT NULL, snapshot_rev TEXT, rev TEXT, pds TEXT, error TEXT
  );
  CREATE TABLE IF NOT EXISTS cursor (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS seed (did TEXT PRIMARY KEY);
  -- records that fail their lexicon, as they stand now (a valid later version clears one)
  CREATE TABLE IF NOT EXISTS invalid (
    uri TEXT PRIMARY KEY, collection TEXT NOT NULL, did TEXT NOT NULL, cid TEXT NOT NULL, error TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS status_history (
    status_uri TEXT NOT NULL, cid TEXT NOT NULL, workload_uri TEXT NOT NULL, workload_cid TEXT NOT NULL, meshlet TEXT NOT NULL,
    replica INTEGER NOT NULL, state TEXT NOT NULL, at TEXT NOT NULL, message TEXT,
    PRIMARY KEY (status_uri, cid)
  );
  CREATE INDEX IF NOT EXISTS status_history_workload ON status_history (workload_uri);
  CREATE TABLE IF NOT EXISTS workload_summary (
    uri TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL,
    phase TEXT NOT NULL, final INTEGER NOT NULL, json TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS workload_summary_time ON workload_summary (created_at DESC, uri DESC);
  CREATE INDEX IF NOT EXISTS workload_summary_owner ON workload_summary (owner, created_at DESC, uri DESC);
  CREATE INDEX IF NOT EXISTS workload_summary_state ON workload_summary (state, created_at DESC, uri DESC);
`

interface RepoDbRow {
  did: string
  status: RepoStatus
  snapshot_rev: string | null
  rev: string | null
  pds: string | null
  error: string | null
}

interface SummaryDbRow {
  uri: string
  owner: string
  created_at: string
  state: string
  phase: string
  final: number
  json: string
}

export class SqliteStore implements AppviewStore {
  readonly db: Database.Database
  private statements = new Map<string, Database.Statement>()

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.db.exec(SCHEMA)
  }

  private st(sql: string): Database.Statement {
    let s = this.statements.get(sql)
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)))
    return s
  }

  async allRecords(): Promise<RecordRow[]> {
    return this.st('SELECT uri, collection, did, rkey, cid, json FROM record ORDER BY rowid').all() as RecordRow[]
  }

  async recordsOf(did: string): Promise<Map<string, string>> {
    const rows = this.st('SELECT uri, cid FROM record WHERE did = ?').all(did) as { uri: string; cid: string }[]
    return new Map(rows.map((r) => [r.uri, r.cid]))
  }

  async countByCollection(): Promise<Map<string, number>> {
    const rows = this.st('SELECT collection, count(*) AS n FROM record GROUP BY collection').all() as { collection: string; n: number }[]
    return new Map(rows.map((r) => [r.collection, r.n]))
  }

  async applyCommit(w: CommitWrite): Promise<void> {
    this.db.transaction(() => this.write(w))()
  }

  private write(w: CommitWrite): void {
    if (w.put) {
      this.putRecordRow(w.put)
      this.st('DELETE FROM invalid WHERE uri = ?').run(w.put.uri)
    }
    if (w.delete) {
      this.st('DELETE FROM record WHERE uri = ?').run(w.delete)
      this.st('DELETE FROM invalid WHERE uri = ?').run(w.delete)
    }
    // an invalid version is ignored, as the meshlets ignore it: an earlier valid one stays believed
    if (w.invalid) this.putInvalidRow(w.invalid)
    if (w.history) this.putHistoryRow(w.history)
    if (w.repo) this.st('UPDATE repo SET rev = ? WHERE did = ?').run(w.repo.rev, w.repo.did)
    if (w.cursor) this.setCursorRow(w.cursor.source, w.cursor.seq)
  }

  async replaceRepo(did: string, snap: { rev: string; records: RecordRow[]; invalid: InvalidRow[]; history: HistoryRow[] }): Promise<void> {
    this.db.transaction(() => {
      this.st('DELETE FROM record WHERE did = ?').run(did)
      this.st('DELETE FROM invalid WHERE did = ?').run(did)
      for (const r of snap.records) this.putRecordRow(r)
      for (const i of snap.invalid) this.putInvalidRow(i)
      for (const h of snap.history) this.putHistoryRow(h)
      // still pending: the live events that arrived meanwhile are not in yet
      this.st(
        `INSERT INTO repo (did, status, snapshot_rev, rev) VALUES (?, 'pending', ?, ?)
           ON CONFLICT(did) DO UPDATE SET status = 'pending', snapshot_rev = excluded.snapshot_rev, rev = excluded.rev, error = NULL`,
      ).run(did, snap.rev, snap.rev)
    })()
  }

  private putRecordRow(r: RecordRow): void {
    this.st(
      `INSERT INTO record (uri, collection, did, rkey, cid, json) VALUES (@uri, @collection, @did, @rkey, @cid, @json)
         ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, json = excluded.json`,
    ).run(r)
  }

  private putInvalidRow(i: InvalidRow): void {
    this.st(
      `INSERT INTO invalid (uri, collection, did, cid, error) VALUES (@uri, @collection, @did, @cid, @error)
         ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, error = excluded.error`,
    ).run(i)
  }

  private putHistoryRow(h: HistoryRow): void {
    this.st(
      `INSERT OR IGNORE INTO status_history (status_uri, cid, workload_uri, workload_cid, meshlet, replica, state, at, message)
         VALUES (@statusUri, @cid, @workloadUri, @workloadCid, @meshlet, @replica, @state, @at, @message)`,
    ).run({ ...h, message: h.message ?? null })
  }

  async repos(): Promise<RepoRow[]> {
    const rows = this.st('SELECT did, status, snapshot_rev, rev, pds, error FROM repo ORDER BY did').all() as RepoDbRow[]
    return rows.map((r) => ({
      did: r.did,
      status: r.status,
      ...(r.snapshot_rev ? { snapshotRev: r.snapshot_rev } : {}),
      ...(r.rev ? { rev: r.rev } : {}),
      ...(r.pds ? { pds: r.pds } : {}),
      ...(r.error ? { error: r.error } : {}),
    }))
  }

  async putRepo(row: RepoRow): Promise<void> {
    this.st(
      `INSERT INTO repo (did, status, snapshot_rev, rev, pds, error) VALUES (@did, @status, @snapshotRev, @rev, @pds, @error)
         ON CONFLICT(did) DO UPDATE SET status = excluded.status, snapshot_rev = excluded.snapshot_rev, rev = excluded.rev,
           pds = excluded.pds, error = excluded.error`,
    ).run({ snapshotRev: null, rev: null, pds: null, error: null, ...row })
  }

  async getCursor(source: string): Promise<number | undefined> {
    return (this.st('SELECT seq FROM cursor WHERE source = ?').get(source) as { seq: number } | undefined)?.seq
  }

  async setCursor(source: string, seq: number): Promise<void> {
    this.setCursorRow(source, seq)
  }

  private setCursorRow(source: string, seq: number): void {
    // never backwards: a flush of skipped events and a record's own write may race
    this.st('INSERT INTO cursor (source, seq) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET seq = max(seq, excluded.seq)').run(source, seq)
  }

  async seeds(): Promise<string[]> {
    return (this.st('SELECT did FROM seed ORDER BY did').all() as { did: string }[]).map((r) => r.did)
  }

  async addSeeds(dids: string[]): Promise<void> {
    this.db.transaction(() => {
      for (const d of dids) this.st('INSERT OR IGNORE INTO seed (did) VALUES (?)').run(d)
    })()
  }

  async invalidCount(): Promise<Map<string, number>> {
    const rows = this.st('SELECT collection, count(*) AS n FROM invalid GROUP BY collection').all() as { collection: string; n: number }[]
    return new Map(rows.map((r) => [r.collection, r.n]))
  }

  async historyOf(workloadUri: string): Promise<HistoryRow[]> {
    const rows = this.st(
      'SELECT status_uri, cid, workload_uri, workload_cid, meshlet, replica, state, at, message FROM status_history WHERE workload_uri = ? ORDER BY at, rowid',
    ).all(workloadUri) as {
      status_uri: string
      cid: string
      workload_uri: string
      workload_cid: string
      meshlet: string
      replica: number
      state: string
      at: string
      message: string | null
    }[]
    return rows.map((r) => ({
      statusUri: r.status_uri,
      cid: r.cid,
      workloadUri: r.workload_uri,
      workloadCid: r.workload_cid,
      meshlet: r.meshlet,
      replica: r.replica,
      state: r.state,
      at: r.at,
      ...(r.message ? { message: r.message } : {}),
    }))
  }

  async putSummary(s: WorkloadSummary): Promise<void> {
    this.st(
      `INSERT INTO workload_summary (uri, owner, created_at, state, phase, final, json) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(uri) DO UPDATE SET owner = excluded.owner, created_at = excluded.created_at, state = excluded.state,
           phase = excluded.phase, final = excluded.final, json = excluded.json`,
    ).run(s.uri, s.owner, s.createdAt, s.state, s.phase, s.final ? 1 : 0, JSON.stringify(s.view))
  }

  async deleteSummary(uri: string): Promise<void> {
    this.st('DELETE FROM workload_summary WHERE uri = ?').run(uri)
  }

  async listSummaries(q: SummaryQuery): Promise<WorkloadSummary[]> {
    const where: string[] = []
    const args: (string | number)[] = []
    if (q.owner) {
      where.push('owner = ?')
      args.push(q.owner)
    }
    if (q.state) {
      where.push('state = ?')
      args.push(q.state)
    }
    if (q.before) {
      where.push('(created_at < ? OR (created_at = ? AND uri < ?))')
      args.push(q.before.createdAt, q.before.createdAt, q.before.uri)
    }
    const sql = `SELECT uri, owner, created_at, state, phase, final, json FROM workload_summary
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, uri DESC LIMIT ?`
    const rows = this.st(sql).all(...args, q.limit) as SummaryDbRow[]
    return rows.map((r) => ({
      uri: r.uri,
      owner: r.owner,
      createdAt: r.created_at,
      state: r.state,
      phase: r.phase,
      final: r.final === 1,
      view: JSON.parse(r.json) as WorkloadView,
    }))
  }

  async summaryFinality(): Promise<Map<string, boolean>> {
    const rows = this.st('SELECT uri, final FROM workload_summary').all() as { uri: string; final: number }[]
    return new Map(rows.map((r) => [r.uri, r.final === 1]))
  }

  async countSummaries(): Promise<{ state: string; phase: string; count: number }[]> {
    return this.st('SELECT state, phase, count(*) AS count FROM workload_summary GROUP BY state, phase ORDER BY state, phase').all() as {
      state: string
      phase: string
      count: number
    }[]
  }

  async close(): Promise<void> {
    this.db.close()
  }
}
