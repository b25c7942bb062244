// The contribution ledger: per owner and period, what its meshlets served to other
// owners' workloads and what its workloads used on other owners' meshlets. Pure, and
// from public records only, so any member who reads the same repos gets the same rows.
//
// What counts: a finished replica exactly when fair share counts it (servedCpuMillis in
// src/scheduler/fairshare.ts: the workload exists in the version the status names, the
// meshlet's link verifies, it offered for that version, the status sits at its canonical
// key, the owner is not its own server, and the cpu is at most what the workload asked
// for over the replica's wall time). It counts in the period its finishedAt falls in.
// - cpu: that capped cpuMillis.
// - memory: the memory the workload requested (resources.memoryMiB) times the replica's
//   wall time, from the later of the workload's createdAt and the replica's startedAt to
//   its finishedAt. The request, not memoryPeakBytes: it is what the lender held back,
//   it comes from the owner's own signed record, and a meshlet cannot inflate it.
import type { LedgerRow } from '../lexicon/types/commune/appview/defs.js'
import { servedCpuMillis } from '../scheduler/fairshare.js'
import type { PublicState } from '../scheduler/state.js'
import { cmp } from './views.js'

export const PERIODS = ['total', 'day', 'week', 'month'] as const
export type Period = (typeof PERIODS)[number]

export interface LedgerQuery {
  /** Inclusive, ms. */
  from: number
  /** Exclusive, ms. */
  to: number
  period: Period
  owner?: string
}

/** One finished replica as the ledger counts it. */
export interface LedgerEntry {
  status: string
  server: string
  consumer: string
  finishedAt: number
  cpuMillis: number
  memoryMiBSeconds: number
}

/** Every finished replica the ledger counts, finished in [from, to). */
export function ledgerEntries(state: PublicState, from: number, to: number): LedgerEntry[] {
  const out: LedgerEntry[] = []
  for (const s of state.statuses.values()) {
    const r = s.record
    if (!r.finishedAt) continue
    const finishedAt = Date.parse(r.finishedAt)
    if (!(finishedAt >= from && finishedAt < to)) continue
    const counted = servedCpuMillis(state, s)
    if (!counted) continue
    const w = state.workloads.get(r.workload.uri)!
    const startedAt = Math.max(Date.parse(w.record.createdAt), r.startedAt ? Date.parse(r.startedAt) : -Infinity)
    const wallMs = finishedAt - startedAt
    out.push({
      status: s.uri,
      server: counted.server,
      consumer: counted.consumer,
      finishedAt,
      cpuMillis: counted.cpuMillis,
      memoryMiBSeconds: Math.floor((w.record.resources.memoryMiB * wallMs) / 1000),
    })
  }
  return out.sort((a, b) => cmp(a.status, b.status))
}

export function ledger(state: PublicState, q: LedgerQuery): LedgerRow[] {
  const rows = new Map<string, LedgerRow>()
  const row = (owner: string, at: number): LedgerRow => {
    const [start, end] = periodOf(at, q)
    const key = `${start}\0${owner}`
    let r = rows.get(key)
    if (!r) {
      rows.set(
        key,
        (r = {
          owner,
          periodStart: new Date(start).toISOString(),
          periodEnd: new Date(end).toISOString(),
          servedCpuMillis: 0,
          usedCpuMillis: 0,
          balanceCpuMillis: 0,
          servedMemoryMiBSeconds: 0,
          usedMemoryMiBSeconds: 0,
          balanceMemoryMiBSeconds: 0,
          servedReplicas: 0,
          usedReplicas: 0,
        }),
      )
    }
    return r
  }
  for (const e of ledgerEntries(state, q.from, q.to)) {
    if (!q.owner || q.owner === e.server) {
      const s = row(e.server, e.finishedAt)
      s.servedCpuMillis += e.cpuMillis
      s.servedMemoryMiBSeconds += e.memoryMiBSeconds
      s.servedReplicas++
    }
    if (!q.owner || q.owner === e.consumer) {
      const u = row(e.consumer, e.finishedAt)
      u.usedCpuMillis += e.cpuMillis
      u.usedMemoryMiBSeconds += e.memoryMiBSeconds
      u.usedReplicas++
    }
  }
  for (const r of rows.values()) {
    r.balanceCpuMillis = r.servedCpuMillis - r.usedCpuMillis
    r.balanceMemoryMiBSeconds = r.servedMemoryMiBSeconds - r.usedMemoryMiBSeconds
  }
  return [...rows.values()].sort((a, b) => cmp(a.periodStart, b.periodStart) || cmp(a.owner, b.owner))
}

/** The period [start, end) a time falls in, clipped to the query's range. UTC throughout. */
export function periodOf(at: number, q: Pick<LedgerQuery, 'from' | 'to' | 'period'>): [number, number] {
  if (q.period === 'total') return [q.from, q.to]
  const d = new Date(at)
  let start: number
  let end: number
  if (q.period === 'day') {
    start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    end = start + 86_400_000
  } else if (q.period === 'week') {
    const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    start = day - ((d.getUTCDay() + 6) % 7) * 86_400_000 // back to Monday
    end = start + 7 * 86_400_000
  } else {
    start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
  }
  return [Math.max(start, q.from), Math.min(end, q.to)]
}

export const CSV_HEADER = [
  'period_start',
  'period_end',
  'owner',
  'served_cpu_seconds',
  'used_cpu_seconds',
  'balance_cpu_seconds',
  'served_memory_gb_hours',
  'used_memory_gb_hours',
  'balance_memory_gb_hours',
  'served_replicas',
  'used_replicas',
] as const

/**
 * The settlement CSV (RFC 4180, CRLF): one row per owner per period. cpu-seconds to the
 * millisecond; memory in GB-hours with GB = 1024 MiB (MiB-seconds / 1024 / 3600), six
 * decimals.
 */
export function ledgerCsv(rows: LedgerRow[]): string {
  const lines = [CSV_HEADER.join(',')]
  for (const r of rows) {
    lines.push(
      [
        r.periodStart,
        r.periodEnd,
        r.owner,
        seconds(r.servedCpuMillis),
        seconds(r.usedCpuMillis),
        seconds(r.balanceCpuMillis),
        gbHours(r.servedMemoryMiBSeconds),
        gbHours(r.usedMemoryMiBSeconds),
        gbHours(r.balanceMemoryMiBSeconds),
        String(r.servedReplicas),
        String(r.usedReplicas),
      ]
        .map(csvField)
        .join(','),
    )
  }
  return lines.join('\r\n') + '\r\n'
}

const seconds = (millis: number) => (millis / 1000).toFixed(3)
const gbHours = (mibSeconds: number) => (mibSeconds / 1024 / 3600).toFixed(6)

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v
}

/** A ledger range from user input: ISO datetimes, or a bare date (UTC midnight). Throws one line. */
export function parseRange(from: string | undefined, to: string | undefined, now: number): { from: number; to: number } {
  const f = from === undefined ? now - 30 * 86_400_000 : Date.parse(from)
  const t = to === undefined ? now : Date.parse(to)
  if (!Number.isFinite(f)) throw new RangeError(`--from is not a date: ${from}`)
  if (!Number.isFinite(t)) throw new RangeError(`--to is not a date: ${to}`)
  if (!(f < t)) throw new RangeError('--from must be before --to')
  return { from: f, to: t }
}
