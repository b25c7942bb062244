// One Meshlet daemon on a thread of its own (a worker with its own event loop and heap),
// as each meshlet is its own process in a real commune: the placement bench runs its
// daemons this way with BENCH_THREADS=1, so they share the machine's cores instead of one
// thread. The thread reports every placement it evaluates and answers a few requests.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import type { MeshletConfig } from '../../src/daemon/config.js'
import type { Placement } from '../../src/scheduler/placement.js'

/** What a daemon reports of one evaluation: enough to judge agreement and overlaps. */
export interface Evaluated {
  uri: string
  did: string
  placed: boolean
  /** The selection, as a comparable string. */
  sel: string
  confirmedSelf: boolean
}

type Request = { id: number; op: 'capacities' | 'idle' | 'ops' | 'commits' | 'close' }
type Reply = { id: number; value: number | null }

export function evaluated(did: string, p: Placement): Evaluated {
  return {
    uri: p.workload.uri,
    did,
    placed: p.phase === 'placed',
    sel: JSON.stringify(p.selected.map((s) => [s.meshlet, s.replicas + s.finished])),
    confirmedSelf: p.confirmed.includes(did),
  }
}

/** The bench's handle on a daemon thread. */
export class MeshletThread {
  private next = 0
  private waiting = new Map<number, (v: number | null) => void>()
  private constructor(
    private readonly worker: Worker,
    readonly did: string,
  ) {
    worker.on('message', (m: Reply | { evaluated: Evaluated }) => {
      if ('id' in m) {
        this.waiting.get(m.id)?.(m.value)
        this.waiting.delete(m.id)
      }
    })
  }

  static async start(cfg: Partial<MeshletConfig>, onEvaluated: (e: Evaluated) => void): Promise<MeshletThread> {
    const worker = new Worker(new URL(import.meta.url), { workerData: cfg })
    worker.on('message', (m: { evaluated?: Evaluated }) => m.evaluated && onEvaluated(m.evaluated))
    const did = await new Promise<string>((resolve, reject) => {
      worker.once('error', reject)
      worker.once('message', (m: { started?: string }) => (m.started ? resolve(m.started) : reject(new Error('no start message'))))
    })
    return new MeshletThread(worker, did)
  }

  private ask(op: Request['op']): Promise<number | null> {
    const id = this.next++
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.worker.postMessage({ id, op } satisfies Request)
    })
  }

  capacities = async () => (await this.ask('capacities'))!
  idle = async () => void (await this.ask('idle'))
  ops = async () => (await this.ask('ops'))!
  commits = async () => (await this.ask('commits'))!
  async close(): Promise<void> {
    await this.ask('close')
    await this.worker.terminate()
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort
  process.env.LOG_ENABLED ??= 'false'
  const { Meshlet } = await import('../../src/daemon/meshlet.js')
  const { silentLogger } = await import('../../src/util/logger.js')
  const daemon = await Meshlet.start(workerData as Partial<MeshletConfig>, { logger: silentLogger() })
  daemon.ctx.engine.listeners.add((p: Placement) => port.postMessage({ evaluated: evaluated(daemon.did, p) }))
  port.on('message', async (r: Request) => {
    const value =
      r.op === 'capacities'
        ? daemon.ctx.state.capacities.size
        : r.op === 'ops'
          ? daemon.ctx.writer.ops
          : r.op === 'commits'
            ? daemon.ctx.writer.commits
            : r.op === 'idle'
              ? (await daemon.ctx.engine.idle(), null)
              : (await daemon.close(), null)
    port.postMessage({ id: r.id, value } satisfies Reply)
  })
  port.postMessage({ started: daemon.did })
}
