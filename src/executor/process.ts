// The process driver (opt-in): for trusted clusters and machines without Docker. Runs
// the command as a child process with a timeout and captured output. CPU time and peak
// memory come from /proc/<pid> (utime+stime+cutime+cstime, VmHWM), sampled while it runs.
//
// Containment, as far as a plain process allows:
// - its working directory (also HOME and TMPDIR) is a fresh 0700 directory under the
//   system temp dir, never inside the data dir (which holds the config with the app
//   password and the meshlet's keys), removed when the replica ends;
// - it runs in its own process group, and everything in the group ends with it: stop
//   signals the group, and when the main process exits the rest of its group is killed;
// - it dies with the daemon, even when the daemon is killed outright: the main process
//   carries a parent-death signal (setpriv --pdeathsig KILL), and a watchdog per replica
//   (a shell blocked reading a pipe from the daemon) kills the whole group when that pipe
//   closes, which the kernel does when the daemon dies, however it dies;
// - CPU: a cgroup per replica with the workload's cpu (cgroup v2 cpu.max, or a v1 CFS
//   quota) when the daemon can write one (cgroup.ts); otherwise it runs at nice 10, below
//   the daemon and the host, which bounds nothing but its priority (say so in docs);
// - memory: an address-space limit (prlimit --as) where prlimit exists.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import type { Socket } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from 'pino'
import { CpuLimiter, type CpuLimitKind, type ReplicaCgroup } from './cgroup.js'
import { LogRing } from './logring.js'
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec } from './types.js'

/** Joins the cgroup whose procs file is $0, then becomes the command ("$@"): nothing runs outside the limit. */
const JOIN_CGROUP = 'echo $$ > "$0" && exec "$@"'
/**
 * Blocks until the daemon's end of the pipe closes (the daemon is gone), then kills the
 * replica's group ($1) and whatever else is in its cgroup ($2, when it has one: a process
 * that left the group with setsid is still in the cgroup).
 */
const WATCHDOG = 'read -r _; kill -s KILL -- -"$1" 2>/dev/null; [ -n "$2" ] && for p in $(cat "$2" 2>/dev/null); do kill -s KILL "$p" 2>/dev/null; done; exit 0'

const TICKS_PER_SECOND = 100
/** Per process, not per driver: several drivers in one process (tests) must not share a cgroup. */
let cgroupSeq = 0

interface Live {
  spec: ReplicaSpec
  child: ChildProcess
  dir: string
  watchdog?: ChildProcess
  cgroup?: ReplicaCgroup
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
  private readonly hasPrlimit = available('prlimit')
  private readonly hasSetpriv = available('setpriv')
  private readonly hasNice = available('nice')
  private readonly cpu: CpuLimiter
  /** Where replicas' working directories go: the system temp dir, never the data dir. */
  private readonly workRoot: string

  constructor(private readonly o: { logger?: Logger; logBytes?: number; dataDir?: string; workRoot?: string; cpuLimiter?: CpuLimiter } = {}) {
    this.workRoot = path.resolve(o.workRoot ?? os.tmpdir())
    if (o.dataDir && isInside(this.workRoot, path.resolve(o.dataDir))) {
      throw new Error(`the process driver's working directories (${this.workRoot}) must be outside the data dir (${o.dataDir}); set TMPDIR elsewhere`)
    }
    this.cpu = o.cpuLimiter ?? CpuLimiter.detect()
    this.cpu.removeStale()
    if (this.cpu.kind === 'none') o.logger?.warn('no writable cgroup: process replicas run at nice 10 without a cpu limit')
  }

  /** How replicas' cpu is limited here: a cgroup (v2 or v1), or 'none' (nice 10 only). */
  get cpuLimit(): CpuLimitKind {
    return this.cpu.kind
  }

  async start(spec: ReplicaSpec): Promise<ReplicaInfo> {
    const key = replicaKey(spec.workloadUri, spec.replica)
    if (this.live.has(key)) return this.info(this.live.get(key)!)
    if (!spec.command?.length) return this.failedInfo(spec, 'the process driver needs a command')
    // mkdtemp: an unpredictable name, created 0700 in one step
    const dir = fs.mkdtempSync(path.join(this.workRoot, 'meshlet-replica-'))
    // named after this daemon's pid (so a later daemon can remove it if this one is killed), unique in it
    const cgroup = this.cpu.create(`meshlet-replica-${process.pid}-${++cgroupSeq}`, spec.cpuMillis)
    const argv = [
      ...(cgroup ? ['sh', '-c', JOIN_CGROUP, cgroup.procsFile] : []),
      ...(this.hasSetpriv ? ['setpriv', '--pdeathsig', 'KILL', '--'] : []),
      ...(!cgroup && this.hasNice ? ['nice', '-n', '10'] : []),
      ...(this.hasPrlimit ? ['prlimit', `--as=${spec.memoryMiB * 2 ** 20}`, '--'] : []),
      ...spec.command,
    ]
    const cmd = spec.command[0]
    const child = spawn(argv[0], argv.slice(1), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: dir, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own session and process group: signals reach the whole group, never the daemon's
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
      cgroup,
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
      void cgroup?.remove()
      return this.failedInfo(spec, `cannot run ${cmd}: ${spawnError.message}`)
    }
    live.watchdog = this.watch(child.pid!, cgroup?.procsFile)
    this.live.set(key, live)
    this.sample(live)
    // the main process is the replica: what it leaves running in its group ends with it
    child.once('exit', () => this.kill(live, 'SIGKILL'))
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
      this.cleanUp(live)
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
      // the group is gone already (or was never made): the main process at most
      if (live.child.exitCode === null && live.child.signalCode === null) live.child.kill(signal)
    }
    // and anything that left the group (setsid) but not its cgroup
    for (const pid of cgroupMembers(live.cgroup)) {
      try {
        process.kill(pid, signal)
      } catch {
        // gone meanwhile
      }
    }
  }

  /**
   * A watchdog for one replica's group that outlives the daemon: it waits on a pipe whose
   * other end only the daemon holds. The kernel closes that end when the daemon dies
   * (SIGKILL and crashes included), and the watchdog then kills the group.
   */
  private watch(pgid: number, procsFile?: string): ChildProcess | undefined {
    try {
      const w = spawn('sh', ['-c', WATCHDOG, 'meshlet-watchdog', String(pgid), procsFile ?? ''], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
      w.on('error', () => undefined)
      // neither the watchdog nor its pipe keeps the daemon's event loop alive
      w.unref()
      ;(w.stdin as Socket | null)?.unref()
      w.stdin?.on('error', () => undefined)
      return w
    } catch {
      return undefined
    }
  }

  /** After the replica ended: its watchdog (never its group number again: it may be reused), directory and cgroup. */
  private cleanUp(live: Live): void {
    const w = live.watchdog
    if (w?.pid && w.exitCode === null && w.signalCode === null) {
      try {
        process.kill(w.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    fs.rmSync(live.dir, { recursive: true, force: true })
    void live.cgroup?.remove()
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

function available(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0
}

/** Is `dir` the same as `parent` or below it? */
function isInside(dir: string, parent: string): boolean {
  const rel = path.relative(parent, dir)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

function cgroupMembers(cgroup: ReplicaCgroup | undefined): number[] {
  if (!cgroup) return []
  try {
    return fs
      .readFileSync(cgroup.procsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid)
  } catch {
    return []
  }
}
