// Contribution balance from public status records: cpu-seconds an owner's meshlets
// served for others minus cpu-seconds the owner's workloads consumed on others'
// meshlets. Anyone can recompute it, so no one can inflate their own by claiming it.
//
// A status record is a claim by the meshlet that wrote it, so it counts only as far as
// other signed records back it:
// - the workload exists, in this version (its owner signed the strongRef's cid): no
//   statuses for invented workloads, and none for a version the owner never published;
// - its meshlet offered for that version in an answer the placement counts (the
//   earliest answer of its round, not contradicted in that round, in round 0 or before
//   the queue timeout), and the status is the one replica the offer covers at its
//   canonical record key: no statuses for real workloads it never offered to run, and no
//   extra copies under other keys or replica numbers;
// - at most the cpu the workload asked for, for as long as the replica can have run
//   (from the later of the workload's createdAt and the replica's startedAt to its
//   finishedAt): drivers enforce that limit, so an honest record never claims more.
//
// Why this proxy and not a full place() of every past workload: place() ranks by these
// very balances, so calling it here recurses through the whole history (each level
// strictly older, but as deep as the history is long) and costs a placement per past
// workload on every state change. And for a finished replica, place() itself selects no
// more than is checked here — a finished status by a linked meshlet that offered for this
// version stays counted where it finished, whatever happens later to membership, grants
// or heartbeats (finality) — so this counts only what place() would count, without the
// cost; the answer rules and the cpu bound are stricter still. It needs no records beyond
// the workload and the serving meshlet's own bids and links: the bids live in the repo the
// status comes from, and the workload is one record in its owner's repo, so a ranking
// meshlet can load them together with the finished statuses it reads from candidates.
//
// Limits: a workload whose record is deleted (or updated to a new version) takes its
// history with it, for the meshlet that served it and for the owner who consumed it; and a
// linked meshlet that writes an offer and a finished status for a real workload claims
// at most that workload's cpu over the time since it was created — the same claim that
// place() already honours as a finished replica, visible to the workload's owner.
import { AtUri } from '@atproto/syntax'
import type { BidRecord, WorkloadRecord, WorkloadStatusRecord } from '../records/index.js'
import { statusRecordKey } from './hash.js'
import { verifiedOwner } from './membership.js'
import { queueDeadlineOf } from './placement.js'
import { isFinal } from './replica.js'
import type { PublicState, Stored } from './state.js'

/**
 * Balances in cpu-milliseconds, counting only replicas that finished before `asOf`
 * (ms since epoch): a finished replica's record no longer changes, so the balance as of
 * a workload's createdAt is the same for every meshlet that has seen those records.
 *
 * When `servers` is given, only replicas those meshlets ran count: the candidates of a
 * workload are exactly the meshlets every meshlet ranking it follows, so all of them
 * count the same records.
 *
 * Read from a ledger kept beside the state (below), so a balance costs a binary search
 * per serving meshlet and consumer, however long the history.
 */
export function balances(state: PublicState, asOf: number, servers?: string[]): Map<string, number> {
  return ledgerOf(state).balances(state, asOf, servers)
}

/** The same balances by a scan of every status: the definition the ledger is checked against. */
export function balancesByScan(state: PublicState, asOf: number, servers?: string[]): Map<string, number> {
  const only = servers && new Set(servers)
  const out = new Map<string, number>()
  for (const s of state.statuses.values()) {
    if (only && !only.has(s.did)) continue
    const r = s.record
    if (!r.finishedAt || !(Date.parse(r.finishedAt) < asOf)) continue
    const counted = servedCpuMillis(state, s)
    if (!counted) continue
    out.set(counted.server, (out.get(counted.server) ?? 0) + counted.cpuMillis)
    out.set(counted.consumer, (out.get(counted.consumer) ?? 0) - counted.cpuMillis)
  }
  return out
}

/** What a finished status counts for, or undefined when signed records do not back it (see the top of this file). */
export function servedCpuMillis(
  state: PublicState,
  s: Stored<WorkloadStatusRecord>,
): { server: string; consumer: string; cpuMillis: number } | undefined {
  const counted = countedReplica(state, s)
  if (!counted) return undefined
  const server = verifiedOwner(state, s.did)
  if (!server || server === counted.consumer) return undefined
  return { server, consumer: counted.consumer, cpuMillis: counted.cpuMillis }
}

/**
 * The part of servedCpuMillis that depends on the workload's own records only (the
 * workload, its offers, the status); who owns the serving meshlet is looked up when a
 * balance is read, so a change of links needs no recount.
 */
function countedReplica(state: PublicState, s: Stored<WorkloadStatusRecord>): { consumer: string; cpuMillis: number; finishedAt: number } | undefined {
  const r = s.record
  if (!r.cpuMillis || !r.finishedAt || !isFinal(r)) return undefined
  const w = state.workloads.get(r.workload.uri)
  if (!w || w.cid !== r.workload.cid) return undefined
  if (s.rkey !== statusRecordKey(w.uri, r.replica)) return undefined
  if (!(r.replica < (offeredSlots(state, w).get(s.did) ?? 0))) return undefined
  const finishedAt = Date.parse(r.finishedAt)
  const startedAt = Math.max(Date.parse(w.record.createdAt), r.startedAt ? Date.parse(r.startedAt) : -Infinity)
  const wallMs = finishedAt - startedAt
  if (!(wallMs > 0)) return undefined
  const cpuMillis = Math.min(r.cpuMillis, Math.floor((w.record.resources.cpuMillis * wallMs) / 1000))
  return cpuMillis > 0 ? { consumer: w.did, cpuMillis, finishedAt } : undefined
}

/** Replicas one meshlet served one consumer, by when they finished, with running sums. */
class Series {
  private entries: { at: number; cpuMillis: number; status: string }[] = []
  private sums: number[] | undefined

  add(at: number, cpuMillis: number, status: string): void {
    this.entries.push({ at, cpuMillis, status })
    this.sums = undefined
  }

  remove(status: string): void {
    this.entries = this.entries.filter((e) => e.status !== status)
    this.sums = undefined
  }

  get empty(): boolean {
    return this.entries.length === 0
  }

  /** cpu-milliseconds of the replicas that finished before `asOf`. */
  before(asOf: number): number {
    if (!this.sums) {
      this.entries.sort((a, b) => a.at - b.at)
      let total = 0
      this.sums = this.entries.map((e) => (total += e.cpuMillis))
    }
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.entries[mid].at < asOf) lo = mid + 1
      else hi = mid
    }
    return lo === 0 ? 0 : this.sums[lo - 1]
  }
}

/**
 * Every counted replica, kept current from the workloads the state reports touched: a
 * record changes the count of its own workload only, so one record costs a recount of
 * one workload, not of the history.
 */
class Ledger {
  private readonly byWorkload = new Map<string, { meshlet: string; consumer: string; status: string }[]>()
  /** serving meshlet → consumer → series */
  private readonly byMeshlet = new Map<string, Map<string, Series>>()

  sync(state: PublicState): void {
    for (const uri of state.drainTouchedWorkloads()) this.recount(state, uri)
  }

  balances(state: PublicState, asOf: number, servers?: string[]): Map<string, number> {
    this.sync(state)
    const out = new Map<string, number>()
    for (const meshlet of servers ?? this.byMeshlet.keys()) {
      const consumers = this.byMeshlet.get(meshlet)
      if (!consumers) continue
      const server = verifiedOwner(state, meshlet)
      if (!server) continue
      for (const [consumer, series] of consumers) {
        if (consumer === server) continue
        const cpu = series.before(asOf)
        if (!cpu) continue
        out.set(server, (out.get(server) ?? 0) + cpu)
        out.set(consumer, (out.get(consumer) ?? 0) - cpu)
      }
    }
    return out
  }

  private recount(state: PublicState, workloadUri: string): void {
    for (const e of this.byWorkload.get(workloadUri) ?? []) {
      const consumers = this.byMeshlet.get(e.meshlet)
      const series = consumers?.get(e.consumer)
      series?.remove(e.status)
      if (series?.empty) consumers!.delete(e.consumer)
      if (consumers?.size === 0) this.byMeshlet.delete(e.meshlet)
    }
    this.byWorkload.delete(workloadUri)
    const entries: { meshlet: string; consumer: string; status: string }[] = []
    for (const s of state.statusesFor(workloadUri)) {
      const counted = countedReplica(state, s)
      if (!counted) continue
      let consumers = this.byMeshlet.get(s.did)
      if (!consumers) this.byMeshlet.set(s.did, (consumers = new Map()))
      let series = consumers.get(counted.consumer)
      if (!series) consumers.set(counted.consumer, (series = new Series()))
      series.add(counted.finishedAt, counted.cpuMillis, s.uri)
      entries.push({ meshlet: s.did, consumer: counted.consumer, status: s.uri })
    }
    if (entries.length) this.byWorkload.set(workloadUri, entries)
  }
}

/**
 * Forgets a finished workload's records once fair share has counted them (see
 * PublicState.retire): balances read exactly as before, and a later delete or update of
 * the workload still takes its history away.
 */
export function retire(state: PublicState, workloadUri: string): boolean {
  ledgerOf(state).sync(state)
  return state.retire(workloadUri)
}

const ledgers = new WeakMap<PublicState, Ledger>()

function ledgerOf(state: PublicState): Ledger {
  let ledger = ledgers.get(state)
  if (!ledger) ledgers.set(state, (ledger = new Ledger()))
  return ledger
}

/**
 * How many replicas each meshlet offered to run for this version of the workload: the
 * slots of its accepting answers, under the placement's answer rules (validAnswers in
 * placement.ts): per round the earliest bid counts, two different answers in one round
 * are a decline, and a later round's offer counts only up to the queue timeout.
 * Candidacy is not re-checked: for a finished replica the placement does not either
 * (finality), and it would need membership records of repos a ranking meshlet may not follow.
 */
function offeredSlots(state: PublicState, w: Stored<WorkloadRecord>): Map<string, number> {
  const perVersion = cacheOf(state)
  let slots = perVersion.get(w.uri)
  if (!slots) perVersion.set(w.uri, (slots = computeOfferedSlots(state.bidsFor(w.uri), w)))
  return slots
}

function computeOfferedSlots(bids: Stored<BidRecord>[], w: Stored<WorkloadRecord>): Map<string, number> {
  const deadline = queueDeadlineOf(w.record)
  const perMeshlet = w.record.allowPacking ? w.record.replicas : 1
  const byRound = new Map<string, Stored<BidRecord>[]>()
  for (const b of bids) {
    if (b.record.workload.cid !== w.cid) continue
    if (b.record.round > 0 && !b.record.decline && !(Date.parse(b.record.createdAt) <= deadline)) continue
    const key = `${b.record.round}\0${b.did}`
    byRound.set(key, [...(byRound.get(key) ?? []), b])
  }
  const out = new Map<string, number>()
  for (const group of byRound.values()) {
    group.sort((a, b) => Date.parse(a.record.createdAt) - Date.parse(b.record.createdAt) || cmp(a.rkey, b.rkey))
    const first = group[0]
    if (first.record.decline || group.some((b) => !!b.record.decline !== !!first.record.decline)) continue
    const offered = Math.max(1, Math.min(first.record.slots ?? 1, perMeshlet))
    out.set(first.did, Math.min(perMeshlet, (out.get(first.did) ?? 0) + offered))
  }
  return out
}

/** Offers per workload, for one version of the state: every balance computed at that version shares them. */
const caches = new WeakMap<PublicState, { version: number; offers: Map<string, Map<string, number>> }>()

function cacheOf(state: PublicState): Map<string, Map<string, number>> {
  let c = caches.get(state)
  if (!c || c.version !== state.version) caches.set(state, (c = { version: state.version, offers: new Map() }))
  return c.offers
}

/** The repo (owner DID) of an at:// uri; undefined for anything else (AtUri alone would also take a bare "did:…/…"). */
export function ownerOfUri(uri: string): string | undefined {
  if (!uri.startsWith('at://')) return undefined
  try {
    return new AtUri(uri).host || undefined
  } catch {
    return undefined
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
