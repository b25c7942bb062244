// The meshlet's local state: firehose cursors, the public records it has believed (so a
// restart resumes from its cursor without re-reading the network), its replicas, its
// private key, pairing codes, service-auth token ids already used, and its audit log.
// It holds secrets (the X25519 private key): the directory is its user's only (0700),
// the database files 0600, whoever created them and whatever the umask.
import Database from 'better-sqlite3'
import fs from 'node:fs'
import os from 'node:os'
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
    if (file !== ':memory:') {
      makePrivateDir(path.dirname(file))
      // created 0600 before SQLite opens it: SQLite gives -wal and -shm the database file's mode
      fs.closeSync(fs.openSync(file, 'a', 0o600))
    }
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    // `meshlet pair` on the host writes a code while the daemon runs: wait for its lock
    this.db.pragma('busy_timeout = 5000')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS cursor (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS record (
        uri TEXT PRIMARY KEY, collection TEXT NOT NULL, did TEXT NOT NULL,
        rkey TEXT NOT NULL, cid TEXT NOT NULL, json TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- one-time pairing codes, hashed (src/daemon/pairing.ts)
      CREATE TABLE IF NOT EXISTS pairing_code (
        id INTEGER PRIMARY KEY AUTOINCREMENT, salt TEXT NOT NULL, hash TEXT NOT NULL,
        issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        used_at INTEGER, used_by TEXT
      );
      -- service-auth tokens already accepted, until they expire (src/xrpc/replay.ts)
      CREATE TABLE IF NOT EXISTS seen_token (key TEXT PRIMARY KEY, exp INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS seen_token_exp ON seen_token (exp);
      -- control actions, append-only (src/daemon/audit.ts)
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL,
        actor TEXT, target TEXT, outcome TEXT NOT NULL, detail TEXT
      );
    `)
    if (file !== ':memory:') {
      for (const f of [file, `${file}-wal`, `${file}-shm`]) chmodIfExists(f, 0o600)
    }
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

  private transaction?: Database.Transaction<(fn: () => unknown) => unknown>

  /** Runs fn in one transaction: a record and the cursor that delivered it land together. */
  tx<T>(fn: () => T): T {
    this.transaction ??= this.db.transaction((inner: () => unknown) => inner())
    return this.transaction(fn) as T
  }

  close(): void {
    this.db.close()
  }
}

/**
 * Creates a directory readable by its user only, or narrows an existing one to that.
 * A shared directory that merely contains the state (the filesystem root, the home or
 * temp directory, any sticky directory like /tmp) is left alone: narrowing it would
 * break other users, and a daemon running as root could do it.
 */
export function makePrivateDir(dir: string): void {
  const abs = path.resolve(dir)
  fs.mkdirSync(abs, { recursive: true, mode: 0o700 })
  const shared = [path.parse(abs).root, os.homedir(), os.tmpdir()].map((d) => path.resolve(d))
  if (shared.includes(abs) || (fs.statSync(abs).mode & 0o1000) !== 0) return
  fs.chmodSync(abs, 0o700)
}

export function chmodIfExists(file: string, mode: number): void {
  try {
    fs.chmodSync(file, mode)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
