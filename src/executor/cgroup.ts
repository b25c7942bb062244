// CPU time and peak memory of a container, read from its cgroup while it runs (a
// stopped container's stats read as zero, and its cgroup is gone once it exits).
import fs from 'node:fs'
import path from 'node:path'

export interface Usage {
  cpuMillis: number
  memoryPeakBytes: number
}

type Reader = () => Usage | undefined

function readNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim())
    return Number.isFinite(n) ? n : undefined
  } catch {
    return undefined
  }
}

function readCpuStatUsec(file: string): number | undefined {
  try {
    const m = /usage_usec (\d+)/.exec(fs.readFileSync(file, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Finds the container's cgroup (v1 cgroupfs, v2 systemd or cgroupfs); undefined if none is readable. */
export function cgroupReader(containerId: string, root = '/sys/fs/cgroup'): Reader | undefined {
  const v1cpu = `${root}/cpuacct/docker/${containerId}/cpuacct.usage`
  const v1mem = `${root}/memory/docker/${containerId}/memory.max_usage_in_bytes`
  if (readNumber(v1cpu) !== undefined) {
    return () => {
      const ns = readNumber(v1cpu)
      if (ns === undefined) return undefined
      return { cpuMillis: Math.round(ns / 1e6), memoryPeakBytes: readNumber(v1mem) ?? 0 }
    }
  }
  for (const dir of [`${root}/system.slice/docker-${containerId}.scope`, `${root}/docker/${containerId}`]) {
    if (readCpuStatUsec(`${dir}/cpu.stat`) === undefined) continue
    return () => {
      const us = readCpuStatUsec(`${dir}/cpu.stat`)
      if (us === undefined) return undefined
      return { cpuMillis: Math.round(us / 1000), memoryPeakBytes: readNumber(`${dir}/memory.peak`) ?? readNumber(`${dir}/memory.current`) ?? 0 }
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------
// CPU limits for the process driver: one cgroup per replica, which the replica's first
// process joins before it execs the command, so everything it starts is limited too.
//
// cgroup v2: a child cgroup with cpu.max. The kernel enables controllers for children
// only in a cgroup without processes of its own (except the root), so when the daemon's
// cgroup does not delegate cpu yet, the daemon moves itself into a leaf
// (`meshlet-daemon`) and enables cpu for its former cgroup's children, as container
// engines do. cgroup v1: a child of the daemon's cpu cgroup with a CFS quota.
// Neither writable (an unprivileged daemon without a delegated cgroup): no cgroup; the
// driver then runs replicas at a lower priority instead (see process.ts).

const PERIOD_US = 100_000
const DAEMON_LEAF = 'meshlet-daemon'

export type CpuLimitKind = 'cgroup2' | 'cgroup1' | 'none'

/** One replica's cgroup: it joins by writing its own pid to `procsFile`. */
export interface ReplicaCgroup {
  readonly dir: string
  readonly procsFile: string
  /** Removes the cgroup once its processes are gone (best effort: retried briefly). */
  remove(): Promise<void>
}

export class CpuLimiter {
  private constructor(
    readonly kind: CpuLimitKind,
    /** The cgroup replicas' cgroups are created in. */
    private readonly parent?: string,
  ) {}

  /**
   * Finds where this process may create cpu-limited cgroups. `root` is where the
   * hierarchies are mounted, `selfCgroup` the text of /proc/self/cgroup (both for tests).
   */
  static detect(opts: { root?: string; selfCgroup?: string; pid?: number } = {}): CpuLimiter {
    const root = opts.root ?? '/sys/fs/cgroup'
    let self: string
    try {
      self = opts.selfCgroup ?? fs.readFileSync('/proc/self/cgroup', 'utf8')
    } catch {
      return new CpuLimiter('none')
    }
    const lines = self
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [, controllers, ...rest] = l.split(':')
        return { controllers: controllers ?? '', path: rest.join(':') }
      })
    const v2 = lines.find((l) => l.controllers === '')
    if (v2 && exists(`${root}/cgroup.controllers`)) {
      const parent = delegateCpu(root, v2.path, opts.pid ?? process.pid)
      if (parent) return new CpuLimiter('cgroup2', parent)
    }
    const v1 = lines.find((l) => l.controllers.split(',').includes('cpu'))
    if (v1) {
      for (const mount of [`${root}/${v1.controllers}`, `${root}/cpu`]) {
        const dir = path.join(mount, v1.path)
        if (exists(`${dir}/cpu.cfs_quota_us`) && writable(dir)) return new CpuLimiter('cgroup1', dir)
      }
    }
    return new CpuLimiter('none')
  }

  /**
   * Removes replica cgroups left by daemons that are gone (killed before they could clean
   * up). Each name carries its daemon's pid; only empty cgroups can be removed at all, so a
   * cgroup still in use is never touched.
   */
  removeStale(): void {
    if (!this.parent) return
    let names: string[]
    try {
      names = fs.readdirSync(this.parent)
    } catch {
      return
    }
    for (const name of names) {
      const pid = /^meshlet-replica-(\d+)-\d+$/.exec(name)?.[1]
      if (pid && !alive(Number(pid))) removeDir(path.join(this.parent, name))
    }
  }

  /** A cgroup limited to `cpuMillis` (1000 = one core), or undefined when none can be made. */
  create(name: string, cpuMillis: number): ReplicaCgroup | undefined {
    if (this.kind === 'none' || !this.parent) return undefined
    const dir = path.join(this.parent, name)
    const quota = Math.max(1000, Math.round(cpuMillis * (PERIOD_US / 1000)))
    try {
      fs.mkdirSync(dir)
      if (this.kind === 'cgroup2') fs.writeFileSync(`${dir}/cpu.max`, `${quota} ${PERIOD_US}`)
      else {
        fs.writeFileSync(`${dir}/cpu.cfs_period_us`, String(PERIOD_US))
        fs.writeFileSync(`${dir}/cpu.cfs_quota_us`, String(quota))
      }
    } catch {
      removeDir(dir)
      return undefined
    }
    return { dir, procsFile: `${dir}/cgroup.procs`, remove: () => removeWhenEmpty(dir) }
  }
}

/**
 * The v2 cgroup under which replicas' cgroups can have cpu.max, or undefined. Enabling cpu
 * for children needs the daemon's cgroup to hold no processes (unless it is the root), so
 * the daemon first moves itself into a leaf; if cpu still cannot be enabled it moves back.
 */
function delegateCpu(root: string, selfPath: string, pid: number): string | undefined {
  // already moved by an earlier driver in this process: its parent is the delegated cgroup
  const own = selfPath.endsWith(`/${DAEMON_LEAF}`) ? selfPath.slice(0, -DAEMON_LEAF.length - 1) || '/' : selfPath
  const dir = path.join(root, own)
  if (!readWords(`${dir}/cgroup.controllers`).includes('cpu')) return undefined
  if (readWords(`${dir}/cgroup.subtree_control`).includes('cpu')) return dir
  if (own === '/') return tryWrite(`${dir}/cgroup.subtree_control`, '+cpu') ? dir : undefined
  const leaf = path.join(dir, DAEMON_LEAF)
  try {
    fs.mkdirSync(leaf, { recursive: true })
    fs.writeFileSync(`${leaf}/cgroup.procs`, String(pid))
  } catch {
    removeDir(leaf)
    return undefined
  }
  if (tryWrite(`${dir}/cgroup.subtree_control`, '+cpu')) return dir
  // other processes share the daemon's cgroup: leave everything as it was
  tryWrite(`${dir}/cgroup.procs`, String(pid))
  removeDir(leaf)
  return undefined
}

async function removeWhenEmpty(dir: string): Promise<void> {
  // the kernel lets a cgroup go only once its last process has been reaped
  for (let i = 0; i < 20; i++) {
    if (removeDir(dir)) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** rmdir, as cgroupfs wants (its control files cannot be unlinked); true once it is gone. */
function removeDir(dir: string): boolean {
  try {
    fs.rmdirSync(dir)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readWords(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').trim().split(/\s+/)
  } catch {
    return []
  }
}

function tryWrite(file: string, text: string): boolean {
  try {
    fs.writeFileSync(file, text)
    return true
  } catch {
    return false
  }
}

function exists(file: string): boolean {
  return fs.existsSync(file)
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}
