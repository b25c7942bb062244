// Docker Swarm, driven through the Docker API, as the baseline a user could run instead on
// the same engine: a single-node swarm (initialized only when none is active, and left
// again only then) and a one-replica service whose container gets the same profile a
// meshlet's docker driver would give the workload, as far as a swarm service can express it.
import type Docker from 'dockerode'
import { containerConfig } from '../../src/executor/docker.js'
import type { ReplicaSpec } from '../../src/executor/types.js'

/** Every service a benchmark creates carries this label, so a cleanup finds leftovers. */
export const LABEL_BENCH_SERVICE = 'farm.meshlet.bench'
export const LABEL_SWARM_SERVICE_ID = 'com.docker.swarm.service.id'

export interface SwarmSession {
  /** Whether this process initialized the swarm (and so leaves it at the end). */
  initialized: boolean
  /** Removes this benchmark's services, and leaves the swarm if this process initialized it. */
  close(): Promise<void>
}

export async function joinSwarm(docker: Docker, bench: string): Promise<SwarmSession> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } }
  const state = info.Swarm?.LocalNodeState
  let initialized = false
  if (state !== 'active') {
    if (state && state !== 'inactive') throw new Error(`this engine's swarm is ${state}; the benchmark needs an active one or none`)
    // loopback only: nothing outside this machine can join it while the benchmark runs
    await docker.swarmInit({ ListenAddr: '127.0.0.1:2377', AdvertiseAddr: '127.0.0.1' })
    initialized = true
  }
  return {
    initialized,
    close: async () => {
      await removeServices(docker, bench)
      if (initialized) await docker.swarmLeave({ force: true })
    },
  }
}

export async function removeServices(docker: Docker, bench: string): Promise<void> {
  const services = await docker.listServices({ filters: { label: [`${LABEL_BENCH_SERVICE}=${bench}`] } }).catch(() => [])
  await Promise.all(services.map((s) => docker.getService(s.ID).remove().catch(() => undefined)))
}

export interface SwarmProfile {
  spec: Docker.CreateServiceOptions
  /** What the driver's container has that the service cannot express on this engine. */
  differences: string[]
}

/**
 * A service for one replica, mirroring containerConfig() (src/executor/docker.ts) for the
 * same spec: command, env, cpu/memory/pids limits, init, user, read-only root, dropped
 * capabilities, tmpfs mounts. Swarm (API 1.41) has no `none` network, no
 * no-new-privileges and no tmpfs flags beyond size and mode; those are listed.
 */
export function swarmProfile(spec: ReplicaSpec, name: string, bench: string): SwarmProfile {
  const c = containerConfig(spec, { name })
  const h = c.HostConfig ?? {}
  const differences: string[] = []
  if (h.NetworkMode === 'none') differences.push('network: the driver gives none, a swarm task gets the default bridge')
  if (h.SecurityOpt?.length) differences.push(`security options ${h.SecurityOpt.join(',')} not expressible in a swarm service`)
  const mounts: Docker.MountSettings[] = Object.entries(h.Tmpfs ?? {}).map(([target, options]) => {
    const opt = (k: string) => options.split(',').find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1)
    if (/noexec|nosuid|nodev/.test(options)) differences.push(`tmpfs ${target}: no noexec/nosuid/nodev flags in a swarm mount`)
    return { Type: 'tmpfs', Target: target, Source: '', TmpfsOptions: { SizeBytes: sizeBytes(opt('size') ?? '64m'), Mode: parseInt(opt('mode') ?? '1777', 8) } }
  })
  return {
    differences,
    spec: {
      Name: name,
      Labels: { [LABEL_BENCH_SERVICE]: bench },
      TaskTemplate: {
        ContainerSpec: {
          Image: c.Image,
          ...(c.Cmd ? { Command: c.Cmd as string[] } : {}),
          Env: c.Env,
          ...(c.User ? { User: c.User } : {}),
          Init: h.Init,
          ReadOnly: h.ReadonlyRootfs,
          ...(h.CapDrop ? { CapabilityDrop: h.CapDrop } : {}),
          ...(mounts.length ? { Mounts: mounts } : {}),
        },
        // one run, like a workload: a task that ends is not restarted
        RestartPolicy: { Condition: 'none' },
        Resources: { Limits: { NanoCPUs: h.NanoCpus, MemoryBytes: h.Memory, Pids: h.PidsLimit } },
      },
      Mode: { Replicated: { Replicas: 1 } },
    },
  }
}

function sizeBytes(s: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(s)
  if (!m) return 64 * 2 ** 20
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g']
  return Number(m[1]) * unit
}
