// The daemons of a benchmark, in this thread (as `meshlet dev` runs them) or each in a
// worker thread of its own (as meshlets are separate programs on separate machines; on a
// two-core machine they then use both cores). One interface for both, so a benchmark reads
// the same whichever it runs.
import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { Meshlet } from '../../src/daemon/meshlet.js'
import type { MeshletConfig } from '../../src/daemon/config.js'
import type { Placement } from '../../src/scheduler/placement.js'
import { createLogger, silentLogger } from '../../src/util/logger.js'

/** A placement as a benchmark watches it: reported when the daemon is confirmed or the workload is placed. */
export interface PlacementSeen {
  /** The daemon that evaluated it. */
  did: string
  uri: string
  placed: boolean
  /** The selection, as a comparable string: [meshlet, replicas + finished] per assignment. */
  selection: string
  confirmedSelf: boolean
  /** When the daemon evaluated it, epoch ms (comparable across threads). */
  at: number
}

export interface DaemonCounters {
  /** Repo ops and commits the daemon wrote so far. */
  ops: number
  commits: number
  /** Write attempts the PDS refused or did not answer (the outbox retried them with backoff). */
  failedWrites: number
  /** Capacity records (heartbeats) it knows. */
  capacities: number
  loop: EventLoopUtilization
  /** How it sees each workload asked about (`describePlacement`). */
  views: Record<string, string>
}

export interface BenchDaemon {
  did: string
  idle(): Promise<void>
  /** Its counters, and how it sees the workloads named (for a run in which some did not agree). */
  counters(uris?: string[]): Promise<DaemonCounters>
  close(): Promise<void>
}

/** What a benchmark watches of one evaluation, or nothing when the daemon is neither confirmed nor the workload placed. */
export function placementSeen(did: string, p: Placement): PlacementSeen | undefined {
  const confirmedSelf = p.confirmed.includes(did)
  if (!confirmedSelf && p.phase !== 'placed') return undefined
  const selection = JSON.stringify(p.selected.map((s) => [s.meshlet, s.replicas + s.finished]))
  return { did, uri: p.workload.uri, placed: p.phase === 'placed', selection, confirmedSelf, at: performance.timeOrigin + performance.now() }
}

/** One line of what a daemon's placement of a workload says: where its round stands and whom it waits for. */
export function describePlacement(p: Placement | undefined): string {
  if (!p) return 'workload unknown'
  const short = (did: string) => did.slice(-6)
  const sel = p.selected.map((a) => `${short(a.meshlet)}×${a.replicas + a.finished}`).join(',')
  const answers = p.answers.filter((a) => a.round === p.round).map((a) => `${short(a.did)}:${a.accept ? 'offer' : 'decline'}`).join(',')
  return (
    `${p.phase} round ${p.round} placed ${p.placed}/${p.wanted} settled ${p.settled} selected [${sel}] confirmed [${p.confirmed.map(short)}] ` +
    `invited [${p.invited.map(short)}] answers [${answers}] rejected ${p.rejected.map((r) => r.reason).join(',') || 0}` +
    `${p.reason ? ` reason: ${p.reason}` : ''} next deadline ${p.nextDeadline === null ? 'none' : `in ${Math.round(p.nextDeadline - Date.now())} ms`}`
  )
}

export function countersOf(d: Meshlet, uris: string[] = []): DaemonCounters {
  const w = d.ctx.writer
  return {
    ops: w.ops,
    commits: w.commits,
    failedWrites: d.ctx.outbox.stats.failedAttempts,
    capacities: d.ctx.state.capacities.size,
    loop: performance.eventLoopUtilization(),
    views: Object.fromEntries(uris.map((u) => [u, describePlacement(d.ctx.engine.placement(u))])),
  }
}

export type ToDaemon = { kind: 'idle' | 'counters' | 'close'; id: number; uris?: string[] }
export type FromDaemon =
  | ({ kind: 'placement' } & PlacementSeen)
  | ({ kind: 'reply'; id: number } & DaemonCounters)
  | { kind: 'ready'; did: string }

export type DaemonLayout = 'threads' | 'in-thread'

export async function startDaemon(layout: DaemonLayout, config: Partial<MeshletConfig>, onPlacement: (p: PlacementSeen) => void): Promise<BenchDaemon> {
  return layout === 'threads' ? ThreadDaemon.start(config, onPlacement) : inThread(config, onPlacement)
}

async function inThread(config: Partial<MeshletConfig>, onPlacement: (p: PlacementSeen) => void): Promise<BenchDaemon> {
  // BENCH_LOG_LEVEL (warn, info, …) lets the daemons log to stdout, for a run that went wrong
  const level = process.env.BENCH_LOG_LEVEL
  const d = await Meshlet.start(config, { logger: level ? createLogger('meshlet', level) : silentLogger() })
  d.ctx.engine.listeners.add((p: Placement) => {
    const seen = placementSeen(d.did, p)
    if (seen) onPlacement(seen)
  })
  return {
    did: d.did,
    idle: () => d.ctx.engine.idle(),
    counters: async (uris) => countersOf(d, uris),
    close: () => d.close(),
  }
}

class ThreadDaemon implements BenchDaemon {
  private next = 0
  private readonly waiting = new Map<number, { resolve: (c: DaemonCounters) => void; reject: (err: Error) => void }>()
  private failed: Error | undefined
  private closing = false

  private constructor(
    private readonly worker: Worker,
    readonly did: string,
  ) {}

  static async start(config: Partial<MeshletConfig>, onPlacement: (p: PlacementSeen) => void): Promise<ThreadDaemon> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'daemon-thread.ts')
    const worker = new Worker(entry, { workerData: config })
    let daemon: ThreadDaemon | undefined
    const did = await new Promise<string>((resolve, reject) => {
      worker.on('message', (m: FromDaemon) => {
        if (m.kind === 'ready') resolve(m.did)
        else if (m.kind === 'placement') onPlacement(m)
        else daemon?.reply(m)
      })
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`a daemon thread exited (${code}) before it started`)))
    })
    daemon = new ThreadDaemon(worker, did)
    // a daemon thread that dies mid-run fails the benchmark rather than leaving it waiting
    worker.on('error', (err) => daemon!.fail(err instanceof Error ? err : new Error(String(err))))
    worker.on('exit', (code) => daemon!.fail(new Error(`daemon thread ${did} exited (${code})`)))
    return daemon
  }

  private ask(kind: ToDaemon['kind'], uris?: string[]): Promise<DaemonCounters> {
    if (this.failed) return Promise.reject(this.failed)
    if (this.closing) return Promise.reject(new Error(`daemon thread ${this.did} is closed`))
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.worker.postMessage({ kind, id, uris } satisfies ToDaemon)
    })
  }

  private reply(m: { id: number } & DaemonCounters): void {
    this.waiting.get(m.id)?.resolve(m)
    this.waiting.delete(m.id)
  }

  private fail(err: Error): void {
    if (this.closing) return
    this.failed ??= err
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
  }

  async idle(): Promise<void> {
    await this.ask('idle')
  }

  counters(uris?: string[]): Promise<DaemonCounters> {
    return this.ask('counters', uris)
  }

  async close(): Promise<void> {
    await this.ask('close')
    this.closing = true
    await this.worker.terminate()
  }
}

/** The share of the time between two readings that a loop was busy. */
export function busyBetween(before: EventLoopUtilization, after: EventLoopUtilization): number {
  const active = after.active - before.active
  const idle = after.idle - before.idle
  return active + idle > 0 ? active / (active + idle) : 0
}
