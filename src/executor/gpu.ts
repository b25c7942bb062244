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
