// What the appview keeps, behind one small interface: the records it indexed, where
// each repo's backfill stands, the firehose cursors, the status history it saw go by,
// and a summary row per workload for listing. SQLite is the embedded default
// (sqlite-store.ts); every method returns a promise so a Postgres store can follow
// without the indexer or the queries changing.
import type { Collection } from '../records/index.js'
import type { WorkloadView } from '../lexicon/types/commune/appview/defs.js'

export interface RecordRow {
  uri: string
  collection: Collection
  did: string
  rkey: string
  cid: string
  /** The validated record, as JSON. */
  json: string
}

export type RepoStatus = 'pending' | 'ready' | 'failed'

export interface RepoRow {
  did: string
  status: RepoStatus
  /** The commit rev of the last verified getRepo snapshot: events at or before it are in it. */
  snapshotRev?: string
  /** The rev of the last commit applied (snapshot or live). */
  rev?: string
  pds?: string
  error?: string
}

export interface InvalidRow {
  uri: string
  collection: string
  did: string
  cid: string
  error: string
}

/** One version of a status record that the appview saw (backfill or firehose). */
export interface HistoryRow {
  statusUri: string
  workloadUri: string
  /** The workload version the status is about. */
  workloadCid: string
  meshlet: string
  replica: number
  state: string
  /** The status record's own updatedAt. */
  at: string
  cid: string
  message?: string
}

/** The listing row of a workload: its view, and the columns it is filtered and ordered by. */
export interface WorkloadSummary {
  uri: string
  owner: string
  /** Normalised to toISOString(), so text order is time order. */
  createdAt: string
  state: string
  phase: string
  /** Nothing but its own records can change it any more (every replica finished, or it failed with none running). */
  final: boolean
  view: WorkloadView
}

export interface SummaryQuery {
  owner?: string
  state?: string
  limit: number
  /** Strictly older than this (createdAt, then uri, descending). */
  before?: { createdAt: string; uri: string }
}

/** A write that lands together: a record change, the repo's new rev and the cursor of the event that carried it. */
export interface CommitWrite {
  put?: RecordRow
  delete?: string
  invalid?: InvalidRow
  history?: HistoryRow
  repo?: { did: string; rev: string }
  cursor?: { source: string; seq: number }
}

export interface AppviewStore {
  allRecords(): Promise<RecordRow[]>
  /** uri → cid of one repo's records. */
  recordsOf(did: string): Promise<Map<string, string>>
  countByCollection(): Promise<Map<string, number>>
  applyCommit(w: CommitWrite): Promise<void>
  /**
   * Replaces everything indexed from one repo with a verified snapshot, in one
   * transaction: records, invalid records, the repo's revs. The repo stays pending until
   * the indexer has applied the live events that arrived meanwhile and marks it ready.
   */
  replaceRepo(did: string, snapshot: { rev: string; records: RecordRow[]; invalid: InvalidRow[]; history: HistoryRow[] }): Promise<void>

  repos(): Promise<RepoRow[]>
  putRepo(row: RepoRow): Promise<void>

  getCursor(source: string): Promise<number | undefined>
  setCursor(source: string, seq: number): Promise<void>

  seeds(): Promise<string[]>
  addSeeds(dids: string[]): Promise<void>

  invalidCount(): Promise<Map<string, number>>

  historyOf(workloadUri: string): Promise<HistoryRow[]>

  putSummary(s: WorkloadSummary): Promise<void>
  deleteSummary(uri: string): Promise<void>
  listSummaries(q: SummaryQuery): Promise<WorkloadSummary[]>
  /** uri → final, for every summary: what needs recomputing after a restart. */
  summaryFinality(): Promise<Map<string, boolean>>
  countSummaries(): Promise<{ state: string; phase: string; count: number }[]>

  close(): Promise<void>
}
