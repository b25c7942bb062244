// The process driver (opt-in): for trusted clusters and machines without Docker. Runs
// the command as a child process in its own temporary directory, with an address-space
// limit (prlimit) where available, a timeout, and captured output. CPU time and peak
// memory come from /proc/<pid> (utime+stime+cutime+cstime, VmHWM), sampled while it runs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from 'pino'
import { LogRing } from './logring.js'
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec } from './types.js'

const TICKS_PER_SECOND = 100

interface Live {
  spec: ReplicaSpec
  child: ChildProcess
  dir: string
  ring: LogRing
  cpuMillis: number
  memoryPeakBytes: number
  startedAt: string
  sampler: NodeJS.Timeout
  timeout?: NodeJS.Timeout
  timedOut: boolean
  stopping: boolean
  final?: ReplicaInfo
  done: Promise<ReplicaInfo>
}

export class ProcessDriver implements Driver {
  readonly name = 'process' as const
  private readonly live = new Map<string, Live>()
  private readonly listeners = new Set<(info: ReplicaInfo) => void>()
  private readonly hasPrlimit = spawnSync('prlimit', ['--version']).status === 0

  constructor(private readonly o: { logger?: Logger; logBytes?: number; dataDir?: string } = {}) {}

  async start(spec: ReplicaSpec): Promise<ReplicaInfo> {
    const key = replicaKey(spec.workloadUri, spec.replica)
    if (this.live.has(key)) return this.info(this.live.get(key)!)
    if (!spec.command?.length) return this.failedInfo(spec, 'the process driver needs a command')
    const dir = fs.mkdtempSync(path.join(this.o.dataDir ?? os.tmpdir(), 'replica-'))
    const [cmd, ...args] = spec.command
    const limited = this.hasPrlimit ? ['prlimit', `--as=${spec.memoryMiB * 2 ** 20}`, '--', cmd, ...args] : [cmd, ...args]
    const child = spawn(limited[0], limited.slice(1), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: dir, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const ring = new LogRing(this.o.logBytes)
    child.stdout!.on('data', (d: Buffer) => ring.write(d))
    child.stderr!.on('data', (d: Buffer) => ring.write(d))
    let resolveDone!: (i: ReplicaInfo) => void
    const live: Live = {
      spec,
      child,
      dir,
      ring,
      cpuMillis: 0,
      memoryPeakBytes: 0,
      startedAt: new Date().toISOString(),
      sampler: setInterval(() => this.sample(live), 100),
      timedOut: false,
      stopping: false,
      done: new Promise((r) => (resolveDone = r)),
    }
    live.sampler.unref()
    if (spec.timeoutSeconds) {
      live.timeout = setTimeout(() => {
        live.timedOut = true
        this.kill(live, 'SIGKILL')
      }, spec.timeoutSeconds * 1000)
      live.timeout.unref()
    }
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined))
      child.once('error', (err) => resolve(err))
    })
    if (spawnError) {
      clearInterval(live.sampler)
      clearTimeout(live.timeout)
      fs.rmSync(dir, { recursive: true, force: true })
      return this.failedInfo(spec, `cannot run ${cmd}: ${spawnError.message}`)
    }
    this.live.set(key, live)
    this.sample(live)
    child.once('close', (code, signal) => {
      this.sample(live)
      clearInterval(live.sampler)
      clearTimeout(live.timeout)
      const exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : -1)
      live.final = {
        ...this.info(live),
        state: live.timedOut ? 'failed' : 'exited',
        exitCode,
        finishedAt: new Date().toISOString(),
        ...(live.timedOut ? { message: `timed out after ${spec.timeoutSeconds}s` } : {}),
      }
      fs.rmSync(dir, { recursive: true, force: true })
      resolveDone(live.final)
      if (!live.stopping) setImmediate(() => this.listeners.forEach((l) => l(live.final!)))
    })
    return this.info(live)
  }

  private sample(live: Live): void {
    const pid = live.child.pid
    if (!pid) return
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime, stime, cutime, cstime are fields 14-17 (1-based), i.e. 11-14 after the comm
      const ticks = [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i] ?? 0), 0)
      live.cpuMillis = Math.max(live.cpuMillis, Math.round((ticks * 1000) / TICKS_PER_SECOND))
      const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (hwm) live.memoryPeakBytes = Math.max(live.memoryPeakBytes, Number(hwm[1]) * 1024)
    } catch {
      // the process is gone between samples
    }
  }

  private kill(live: Live, signal: NodeJS.Signals): void {
    try {
      process.kill(-live.child.pid!, signal) // the whole process group
    } catch {
      live.child.kill(signal)
    }
  }

  private info(live: Live): ReplicaInfo {
    if (live.final) return live.final
    return {
      workloadUri: live.spec.workloadUri,
      replica: live.spec.replica,
      meshletDid: live.spec.meshletDid,
      id: `pid:${live.child.pid}`,
      state: 'running',
      cpuMillis: live.cpuMillis,
      memoryPeakBytes: live.memoryPeakBytes,
      startedAt: live.startedAt,
    }
  }

  private failedInfo(spec: ReplicaSpec, message: string): ReplicaInfo {
    return { workloadUri: spec.workloadUri, replica: spec.replica, meshletDid: spec.meshletDid, id: '', state: 'failed', message, finishedAt: new Date().toISOString() }
  }

  async stop(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined> {
    const key = replicaKey(workloadUri, replica)
    const live = this.live.get(key)
    if (!live) return undefined
    live.stopping = true
    if (!live.final) {
      this.kill(live, 'SIGTERM')
      const grace = setTimeout(() => this.kill(live, 'SIGKILL'), 5000)
      await live.done
      clearTimeout(grace)
    }
    this.live.delete(key)
    return live.final
  }

  async pause(workloadUri: string, replica: number): Promise<void> {
    const live = this.live.get(replicaKey(workloadUri, replica))
    if (live && !live.final) this.kill(live, 'SIGSTOP')
  }

  async resume(workloadUri: string, replica: number): Promise<void> {
    const live = this.live.get(replicaKey(workloadUri, replica))
    if (live && !live.final) this.kill(live, 'SIGCONT')
  }

  async inspect(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined> {
    const live = this.live.get(replicaKey(workloadUri, replica))
    return live && this.info(live)
  }

  logs(workloadUri: string, replica: number, cursor?: number, limit?: number) {
    return this.live.get(replicaKey(workloadUri, replica))?.ring.read(cursor, limit)
  }

  /** Child processes do not outlive the daemon that spawned them, so only live ones count. */
  async listOwn(meshletDid: string): Promise<ReplicaInfo[]> {
    return [...this.live.values()].filter((l) => l.spec.meshletDid === meshletDid).map((l) => this.info(l))
  }

  /** A finished process holds nothing but its logs; keep the most recent ones. */
  async release(): Promise<void> {
    const done = [...this.live.entries()].filter(([, l]) => l.final)
    for (const [key] of done.slice(0, Math.max(0, done.length - 256))) this.live.delete(key)
  }

  async adopt(_spec: ReplicaSpec, found: ReplicaInfo): Promise<ReplicaInfo> {
    return found
  }

  onExit(listener: (info: ReplicaInfo) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async close(): Promise<void> {
    for (const key of [...this.live.keys()]) {
      const [uri, replica] = [key.slice(0, key.lastIndexOf('#')), Number(key.slice(key.lastIndexOf('#') + 1))]
      await this.stop(uri, replica)
    }
    this.listeners.clear()
  }
}
