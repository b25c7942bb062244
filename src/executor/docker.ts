// The docker driver: least privilege by default, limits always set, every container
// labelled with its workload, replica and meshlet so a restarted daemon finds its own.
// The trust tier (the one the placement allowed, never merely the one claimed) picks the
// container's profile; GPUs are handed out by device index, one replica per device.
import { createHash } from 'node:crypto'
import { PassThrough } from 'node:stream'
import Docker from 'dockerode'
import type { Logger } from 'pino'
import { cgroupReader, type Usage } from './cgroup.js'
import { detectGpus, GpuAllocator } from './gpu.js'
import { LogRing } from './logring.js'
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec, type ReplicaState } from './types.js'

export const LABEL_WORKLOAD = 'farm.meshlet.workload'
export const LABEL_REPLICA = 'farm.meshlet.replica'
export const LABEL_MESHLET = 'farm.meshlet.meshlet'
const NOBODY = '65534:65534'

export interface DockerDriverOptions {
  /**
   * The meshlet this driver works for. Several meshlets can share one engine (overlapping
   * clusters on one host, or `meshlet dev`): lookups by label are scoped to this DID so a
   * meshlet never touches another's containers.
   */
  meshletDid?: string
  docker?: Docker
  logger?: Logger
  logBytes?: number
  pullTimeoutMs?: number
  pidsLimit?: number
  /** How often cpu and memory are sampled while a container runs. */
  sampleMs?: number
  /** GPU indexes this meshlet offers (its capacity record's gpus); detected with nvidia-smi when first needed otherwise. */
  gpus?: readonly number[]
}

interface Live {
  spec: ReplicaSpec
  id: string
  container: Docker.Container
  ring: LogRing
  usage: Usage
  startedAt: string
  sampler?: NodeJS.Timeout
  timeout?: NodeJS.Timeout
  stopping: boolean
  timedOut: boolean
  final?: ReplicaInfo
  /** container removed after it finished; only the logs remain */
  released?: boolean
}

/** How many finished replicas keep their logs after their containers are removed. */
const KEEP_RELEASED = 256

export class DockerDriver implements Driver {
  readonly name = 'docker' as const
  private readonly docker: Docker
  private readonly live = new Map<string, Live>()
  private readonly listeners = new Set<(info: ReplicaInfo) => void>()
  private readonly imagesOk = new Set<string>()
  private gpuAllocator?: Promise<GpuAllocator>

  constructor(private readonly o: DockerDriverOptions = {}) {
    this.docker = o.docker ?? new Docker()
  }

  private gpusAvailable(): Promise<GpuAllocator> {
    this.gpuAllocator ??= (this.o.gpus ? Promise.resolve(this.o.gpus) : detectGpus().then((g) => g.map((x) => x.index))).then((ids) => new GpuAllocator(ids))
    return this.gpuAllocator
  }

  /** Distinct GPU indexes for a replica, or why there are not enough. */
  private async takeGpus(spec: ReplicaSpec): Promise<number[] | string> {
    const want = spec.gpus ?? 0
    if (want <= 0) return []
    const gpus = await this.gpusAvailable()
    const ids = gpus.allocate(replicaKey(spec.workloadUri, spec.replica), want)
    return ids ?? `needs ${want} GPU(s), ${gpus.free().length} free`
  }

  private releaseGpus(workloadUri: string, replica: number): void {
    void this.gpuAllocator?.then((g) => g.release(replicaKey(workloadUri, replica)))
  }

  containerName(spec: Pick<ReplicaSpec, 'workloadUri' | 'replica' | 'meshletDid'>): string {
    const h = createHash('sha256').update(spec.meshletDid).update('\0').update(spec.workloadUri).digest('hex').slice(0, 20)
    return `meshlet-${h}-${spec.replica}`
  }

  async start(spec: ReplicaSpec): Promise<ReplicaInfo> {
    const key = replicaKey(spec.workloadUri, spec.replica)
    const existing = this.live.get(key)
    if (existing) return (await this.inspect(spec.workloadUri, spec.replica)) ?? this.failed(spec, 'lost track of the container')
    const imageError = await this.ensureImage(spec.image)
    if (imageError) return this.failed(spec, imageError)
    const gpuIds = await this.takeGpus(spec)
    if (typeof gpuIds === 'string') return this.failed(spec, gpuIds)
    let container: Docker.Container
    try {
      container = await this.createWithStorageLimit(spec, gpuIds)
    } catch (err) {
      this.releaseGpus(spec.workloadUri, spec.replica)
      return this.failed(spec, `cannot create container: ${(err as Error).message}`)
    }
    const live: Live = { spec, id: container.id, container, ring: new LogRing(this.o.logBytes), usage: { cpuMillis: 0, memoryPeakBytes: 0 }, startedAt: new Date().toISOString(), stopping: false, timedOut: false }
    this.live.set(key, live)
    try {
      // attach before start so no early output is lost
      await this.attachLogs(live, true)
      await container.start()
    } catch (err) {
      this.live.delete(key)
      this.releaseGpus(spec.workloadUri, spec.replica)
      await container.remove({ force: true }).catch(() => undefined)
      return this.failed(spec, `cannot start container: ${(err as Error).message}`)
    }
    this.watch(live)
    return { ...this.base(spec, container.id), state: 'running', startedAt: live.startedAt }
  }

  /**
   * A storage limit on a writable root (tier c) needs an engine that supports it (overlay2
   * on xfs with pquota, for instance); where it does not, the container is created
   * without one and we say so. Tiers a and b have a read-only root: their scratch is a
   * tmpfs sized by the request.
   */
  private async createWithStorageLimit(spec: ReplicaSpec, gpuIds: number[]): Promise<Docker.Container> {
    const config = containerConfig(spec, { name: this.containerName(spec), pidsLimit: this.o.pidsLimit, gpuIds })
    if (!spec.storageMiB || (spec.tier ?? 'a') !== 'c' || this.storageOptUnsupported) return this.docker.createContainer(config)
    try {
      return await this.docker.createContainer({ ...config, HostConfig: { ...config.HostConfig, StorageOpt: { size: `${spec.storageMiB}M` } } })
    } catch (err) {
      if (!/storage-?opt|quota|xfs/i.test((err as Error).message)) throw err
      this.storageOptUnsupported = true
      this.o.logger?.warn({ err: (err as Error).message }, 'this engine cannot limit container storage; running without a storage limit')
      return this.docker.createContainer(config)
    }
  }

  private storageOptUnsupported = false

  /** Local image if present (and matching its pinned digest), else a bounded pull. */
  private async ensureImage(ref: string): Promise<string | undefined> {
    if (this.imagesOk.has(ref)) return undefined
    const digest = ref.includes('@') ? ref.slice(ref.indexOf('@') + 1) : undefined
    const check = async () => {
      const info = await this.docker.getImage(ref).inspect()
      if (digest && !(info.RepoDigests ?? []).some((d) => d.endsWith(`@${digest}`)) && info.Id !== digest) {
        return `image ${ref} does not match its pinned digest`
      }
      this.imagesOk.add(ref)
      return undefined
    }
    try {
      return await check()
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) return `cannot inspect image ${ref}: ${(err as Error).message}`
    }
    const timeoutMs = this.o.pullTimeoutMs ?? 120_000
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          this.docker.pull(ref, (err: Error | null, stream?: NodeJS.ReadableStream) => {
            if (err || !stream) return reject(err ?? new Error('no pull stream'))
            this.docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()))
          })
        }),
        timeoutMs,
        `pull timed out after ${timeoutMs / 1000}s`,
      )
      return await check()
    } catch (err) {
      return `image ${ref} is not present and could not be pulled: ${(err as Error).message.split('\n')[0]}`
    }
  }

  private async attachLogs(live: Live, beforeStart: boolean): Promise<void> {
    const sink = new PassThrough()
    sink.on('data', (d: Buffer) => live.ring.write(d))
    // before start there is nothing to replay (logs: false): a replay raced with the live
    // stream and could deliver the first output twice
    const stream = beforeStart
      ? await live.container.attach({ stream: true, stdout: true, stderr: true, logs: false })
      : ((await live.container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream)
    this.docker.modem.demuxStream(stream, sink, sink)
    stream.on('error', () => undefined)
  }

  /** Samples usage while running; on exit records the outcome and tells listeners. */
  private watch(live: Live): void {
    const read = cgroupReader(live.id)
    const sample = async () => {
      const u = read?.() ?? (await this.statsUsage(live))
      if (!u) return
      live.usage.cpuMillis = Math.max(live.usage.cpuMillis, u.cpuMillis)
      live.usage.memoryPeakBytes = Math.max(live.usage.memoryPeakBytes, u.memoryPeakBytes)
    }
    void sample()
    live.sampler = setInterval(() => void sample(), read ? (this.o.sampleMs ?? 100) : 1000)
    live.sampler.unref()
    if (live.spec.timeoutSeconds) {
      live.timeout = setTimeout(() => {
        live.timedOut = true
        void live.container.kill().catch(() => undefined)
      }, live.spec.timeoutSeconds * 1000)
      live.timeout.unref()
    }
    void live.container
      .wait()
      .catch(() => undefined)
      .then(async () => {
        await sample()
        clearInterval(live.sampler)
        clearTimeout(live.timeout)
        // an exited container holds no device any more
        this.releaseGpus(live.spec.workloadUri, live.spec.replica)
        const info = await this.inspect(live.spec.workloadUri, live.spec.replica)
        if (!info) return
        live.final = info
        if (live.stopping) return
        // emitted after the current tick: start() has returned to the caller by then
        setImmediate(() => this.listeners.forEach((l) => l(info)))
      })
  }

  private async statsUsage(live: Live): Promise<Usage | undefined> {
    try {
      const s = (await live.container.stats({ stream: false })) as unknown as {
        cpu_stats?: { cpu_usage?: { total_usage?: number } }
        memory_stats?: { max_usage?: number; usage?: number }
      }
      return {
        cpuMillis: Math.round((s.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e6),
        memoryPeakBytes: s.memory_stats?.max_usage ?? s.memory_stats?.usage ?? 0,
      }
    } catch {
      return undefined
    }
  }

  async release(workloadUri: string, replica: number): Promise<void> {
    const live = this.live.get(replicaKey(workloadUri, replica))
    if (!live?.final || live.released) return
    live.released = true
    await live.container.remove({ force: true }).catch(() => undefined)
    const released = [...this.live.entries()].filter(([, l]) => l.released)
    for (const [key] of released.slice(0, Math.max(0, released.length - KEEP_RELEASED))) this.live.delete(key)
  }

  async inspect(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined> {
    const live = this.live.get(replicaKey(workloadUri, replica))
    if (live?.released) return live.final
    const container = live?.container ?? (await this.find(workloadUri, replica))
    if (!container) return undefined
    let info: Docker.ContainerInspectInfo
    try {
      info = await container.inspect()
    } catch {
      return undefined
    }
    const labels = info.Config.Labels ?? {}
    const state: ReplicaState = info.State.Paused ? 'paused' : info.State.Running ? 'running' : info.State.Status === 'created' ? 'starting' : 'exited'
    const exited = state === 'exited'
    return {
      workloadUri: labels[LABEL_WORKLOAD] ?? workloadUri,
      replica: Number(labels[LABEL_REPLICA] ?? replica),
      meshletDid: labels[LABEL_MESHLET] ?? '',
      id: info.Id,
      state: exited && live?.timedOut ? 'failed' : state,
      ...(exited ? { exitCode: info.State.ExitCode, finishedAt: info.State.FinishedAt } : {}),
      ...(live ? { cpuMillis: live.usage.cpuMillis, memoryPeakBytes: live.usage.memoryPeakBytes } : {}),
      startedAt: info.State.StartedAt,
      ...(exited && live?.timedOut ? { message: `timed out after ${live.spec.timeoutSeconds}s` } : {}),
      ...(exited && info.State.OOMKilled ? { message: `killed: out of memory (limit ${live?.spec.memoryMiB} MiB)` } : {}),
    }
  }

  private async find(workloadUri: string, replica: number): Promise<Docker.Container | undefined> {
    const label = [`${LABEL_WORKLOAD}=${workloadUri}`, `${LABEL_REPLICA}=${replica}`]
    if (this.o.meshletDid) label.push(`${LABEL_MESHLET}=${this.o.meshletDid}`)
    const list = await this.docker.listContainers({ all: true, filters: { label } })
    return list[0] ? this.docker.getContainer(list[0].Id) : undefined
  }

  async stop(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined> {
    const key = replicaKey(workloadUri, replica)
    const live = this.live.get(key)
    if (live?.released) {
      this.live.delete(key)
      return live.final
    }
    const container = live?.container ?? (await this.find(workloadUri, replica))
    if (!container) return undefined
    if (live) live.stopping = true
    await container.unpause().catch(() => undefined)
    await container.stop({ t: 5 }).catch(() => undefined)
    await container.wait().catch(() => undefined)
    const info = live?.final ?? (await this.inspect(workloadUri, replica))
    await container.remove({ force: true }).catch(() => undefined)
    if (live) {
      clearInterval(live.sampler)
      clearTimeout(live.timeout)
    }
    this.live.delete(key)
    this.releaseGpus(workloadUri, replica)
    return info
  }

  async pause(workloadUri: string, replica: number): Promise<void> {
    const c = this.live.get(replicaKey(workloadUri, replica))?.container ?? (await this.find(workloadUri, replica))
    await c?.pause()
  }

  async resume(workloadUri: string, replica: number): Promise<void> {
    const c = this.live.get(replicaKey(workloadUri, replica))?.container ?? (await this.find(workloadUri, replica))
    await c?.unpause()
  }

  logs(workloadUri: string, replica: number, cursor?: number, limit?: number) {
    return this.live.get(replicaKey(workloadUri, replica))?.ring.read(cursor, limit)
  }

  async listOwn(meshletDid: string): Promise<ReplicaInfo[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_MESHLET}=${meshletDid}`] } })
    return list.map((c) => ({
      workloadUri: c.Labels[LABEL_WORKLOAD],
      replica: Number(c.Labels[LABEL_REPLICA]),
      meshletDid,
      id: c.Id,
      state: c.State === 'running' ? 'running' : c.State === 'paused' ? 'paused' : c.State === 'created' ? 'starting' : 'exited',
    }))
  }

  async adopt(spec: ReplicaSpec, found: ReplicaInfo): Promise<ReplicaInfo> {
    const key = replicaKey(spec.workloadUri, spec.replica)
    if (this.live.has(key)) return (await this.inspect(spec.workloadUri, spec.replica)) ?? found
    const container = this.docker.getContainer(found.id)
    const live: Live = { spec, id: found.id, container, ring: new LogRing(this.o.logBytes), usage: { cpuMillis: 0, memoryPeakBytes: 0 }, startedAt: found.startedAt ?? new Date().toISOString(), stopping: false, timedOut: false }
    this.live.set(key, live)
    await this.claimGpus(key, container)
    await this.attachLogs(live, false).catch(() => undefined)
    this.watch(live)
    return (await this.inspect(spec.workloadUri, spec.replica)) ?? found
  }

  /** An adopted container keeps the GPUs it was created with. */
  private async claimGpus(key: string, container: Docker.Container): Promise<void> {
    try {
      const info = await container.inspect()
      const ids = (info.HostConfig.DeviceRequests ?? []).flatMap((r) => r.DeviceIDs ?? []).map(Number).filter(Number.isInteger)
      if (ids.length) (await this.gpusAvailable()).claim(key, ids)
    } catch {
      // gone already: its exit is recorded by the watcher
    }
  }

  onExit(listener: (info: ReplicaInfo) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async close(): Promise<void> {
    for (const live of this.live.values()) {
      live.stopping = true
      clearInterval(live.sampler)
      clearTimeout(live.timeout)
    }
    this.live.clear()
    this.listeners.clear()
  }

  private base(spec: ReplicaSpec, id: string) {
    return { workloadUri: spec.workloadUri, replica: spec.replica, meshletDid: spec.meshletDid, id }
  }

  private failed(spec: ReplicaSpec, message: string): ReplicaInfo {
    this.o.logger?.warn({ uri: spec.workloadUri, replica: spec.replica, message }, 'replica failed to start')
    return { ...this.base(spec, ''), state: 'failed', message, finishedAt: new Date().toISOString() }
  }
}

/**
 * The container for one replica, by trust tier (docs/protocol.md, "Share grants"):
 * - a: run only. No network, read-only root, user nobody, every capability dropped, no
 *   new privileges; a small /tmp in memory.
 * - b: scoped writes. Bridge network, read-only root, user nobody, capabilities dropped,
 *   no new privileges; a writable /scratch sized by the request's storage (a tmpfs, so
 *   it also counts against the memory limit) and a small /tmp.
 * - c: a full container. Root, writable root filesystem, bridge network, Docker's default
 *   capabilities; still never privileged and never a host mount.
 * Every tier: cpu, memory (no swap) and pids limits, an init as PID 1, GPUs by device index.
 */
export function containerConfig(spec: ReplicaSpec, o: { name: string; pidsLimit?: number; gpuIds?: readonly number[] }): Docker.ContainerCreateOptions {
  const tier = spec.tier ?? 'a'
  const small = `${Math.max(1, Math.min(spec.memoryMiB, 64))}m`
  const confined = tier !== 'c'
  const tmpfs: Record<string, string> | undefined =
    tier === 'a'
      ? { '/tmp': `rw,noexec,nosuid,nodev,size=${small},mode=1777` }
      : tier === 'b'
        ? { '/tmp': `rw,noexec,nosuid,nodev,size=${small},mode=1777`, '/scratch': `rw,nosuid,nodev,size=${spec.storageMiB ? `${spec.storageMiB}m` : small},mode=1777` }
        : undefined
  const gpus = o.gpuIds ?? []
  const hostConfig: Docker.HostConfig = {
    NanoCpus: Math.round(spec.cpuMillis * 1e6),
    Memory: spec.memoryMiB * 2 ** 20,
    MemorySwap: spec.memoryMiB * 2 ** 20,
    PidsLimit: o.pidsLimit ?? 256,
    Privileged: false,
    ...(confined ? { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] } : {}),
    NetworkMode: tier === 'a' ? 'none' : 'bridge',
    ReadonlyRootfs: confined,
    ...(tmpfs ? { Tmpfs: tmpfs } : {}),
    Binds: [],
    AutoRemove: false,
    // a tiny init as PID 1: signals reach the command and zombies are reaped
    Init: true,
    // by device index, never by count: a count gives every replica the first GPUs
    ...(gpus.length ? { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: gpus.map(String), Capabilities: [['gpu']] }] } : {}),
  }
  return {
    name: o.name,
    Image: spec.image,
    ...(spec.command?.length ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { [LABEL_WORKLOAD]: spec.workloadUri, [LABEL_REPLICA]: String(spec.replica), [LABEL_MESHLET]: spec.meshletDid },
    ...(confined ? { User: NOBODY } : {}),
    NetworkDisabled: tier === 'a',
    HostConfig: hostConfig,
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(t))
}
