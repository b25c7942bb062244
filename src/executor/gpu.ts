// GPU detection from nvidia-smi's CSV query output.
import { execFile } from 'node:child_process'
import type { Gpu } from '../records/index.js'

/** The query whose output parseNvidiaSmiQuery reads (the columns of the H100 fixture). */
export const NVIDIA_SMI_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'memory.used', 'memory.free', 'utilization.gpu', 'driver_version', 'compute_cap']
export const NVIDIA_SMI_QUERY = [`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits']

export function parseNvidiaSmiQuery(csv: string): Gpu[] {
  return csv
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('index'))
    .map((line) => {
      const [index, uuid, model, memory] = line.split(',').map((c) => c.trim())
      const gpu: Gpu = { index: Number(index), model, memoryMiB: Math.round(Number(memory)) }
      if (uuid) gpu.uuid = uuid
      return gpu
    })
    .filter((g) => Number.isInteger(g.index) && g.model && Number.isFinite(g.memoryMiB))
}

export function detectGpus(bin = 'nvidia-smi'): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(bin, NVIDIA_SMI_QUERY, { timeout: 5000 }, (err, stdout) => resolve(err ? [] : parseNvidiaSmiQuery(stdout)))
  })
}

/**
 * Hands each replica its own GPUs, by nvidia-smi index, and takes them back when it ends,
 * so concurrent replicas never share a device (a request by count would give them all GPU 0).
 */
export class GpuAllocator {
  private readonly held = new Map<string, number[]>()

  constructor(private readonly indexes: readonly number[]) {}

  /** Indexes nobody holds, lowest first. */
  free(): number[] {
    const taken = new Set([...this.held.values()].flat())
    return [...new Set(this.indexes)].filter((i) => !taken.has(i)).sort((a, b) => a - b)
  }

  /** `count` distinct free indexes for `key` (the same ones again if it holds some), or undefined when too few are free. */
  allocate(key: string, count: number): number[] | undefined {
    const mine = this.held.get(key)
    if (mine) return mine.length === count ? mine : undefined
    if (count <= 0) return []
    const free = this.free()
    if (free.length < count) return undefined
    const ids = free.slice(0, count)
    this.held.set(key, ids)
    return ids
  }

  /** Marks indexes as held by `key` (a container adopted after a restart keeps its devices). */
  claim(key: string, ids: readonly number[]): void {
    const known = ids.filter((i) => this.indexes.includes(i))
    if (known.length) this.held.set(key, [...known].sort((a, b) => a - b))
  }

  release(key: string): void {
    this.held.delete(key)
  }
}
