// The meshlet's local state: firehose cursors, the public records it has believed (so a
// restart resumes from its cursor without re-reading the network), and its replicas.
import Database from 'better-sqlite3'
import fs from 'node:fs'
import path from 'node:path'

export interface StoredRow {
  uri: string
  collection: string
  did: string
  rkey: string
  cid: string
  json: string
}

export class LocalDb {
  readonly db: Database.Database

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true })
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS cursor (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS record (
        uri TEXT PRIMARY KEY, collection TEXT NOT NULL, did TEXT NOT NULL,
        rkey TEXT NOT NULL, cid TEXT NOT NULL, json TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `)
  }

  private statements = new Map<string, Database.Statement>()

  /** A prepared statement, compiled once: every firehose event runs a few of these. */
  statement(sql: string): Database.Statement {
    let st = this.statements.get(sql)
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)))
    return st
  }

  getCursor(source: string): number | undefined {
    const row = this.statement('SELECT seq FROM cursor WHERE source = ?').get(source) as { seq: number } | undefined
    return row?.seq
  }

  setCursor(source: string, seq: number): void {
    this.statement('INSERT INTO cursor (source, seq) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET seq = excluded.seq').run(source, seq)
  }

  putRecord(row: StoredRow): void {
    this.statement(
      `INSERT INTO record (uri, collection, did, rkey, cid, json) VALUES (@uri, @collection, @did, @rkey, @cid, @json)
         ON CONFLICT(uri) DO UPDATE SET cid = excluded.cid, json = excluded.json`,
    ).run(row)
  }

  deleteRecord(uri: string): void {
    this.statement('DELETE FROM record WHERE uri = ?').run(uri)
  }

  allRecords(): StoredRow[] {
    return this.db.prepare('SELECT uri, collection, did, rkey, cid, json FROM record ORDER BY rowid').all() as StoredRow[]
  }

  get(key: string): string | undefined {
    return (this.statement('SELECT value FROM kv WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  set(key: string, value: string): void {
    this.statement('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  /** Runs fn in one transaction: a record and the cursor that delivered it land together. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)()
  }

  close(): void {
    this.db.close()
  }
}
