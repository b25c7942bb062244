// What this machine can offer: host resources minus a reserve minus what runs.
import fs from 'node:fs'
import os from 'node:os'
import type { Gpu, Resources } from '../records/index.js'
import { detectGpus } from './gpu.js'

export interface Host {
  resources: Resources
  gpus: Gpu[]
  arch: 'amd64' | 'arm64'
}

export async function detectHost(dataDir: string): Promise<Host> {
  const gpus = await detectGpus()
  let storageMiB = 0
  try {
    const st = fs.statfsSync(dataDir)
    storageMiB = Math.floor((st.bavail * st.bsize) / 2 ** 20)
  } catch {
    // an unreadable data dir offers no scratch storage
  }
  return {
    resources: { cpuMillis: os.cpus().length * 1000, memoryMiB: Math.floor(os.totalmem() / 2 ** 20), storageMiB, gpus: gpus.length },
    gpus,
    arch: process.arch === 'arm64' ? 'arm64' : 'amd64',
  }
}

/** host − reserve − Σ held, never negative. */
export function allocatable(host: Resources, reserve: Partial<Resources> | undefined, held: Resources[]): Resources {
  type Amount = 'cpuMillis' | 'memoryMiB' | 'storageMiB' | 'gpus'
  const sum = (k: Amount) => held.reduce((n, r) => n + (r[k] ?? 0), 0)
  const left = (k: Amount) => Math.max(0, (host[k] ?? 0) - (reserve?.[k] ?? 0) - sum(k))
  return { cpuMillis: left('cpuMillis'), memoryMiB: left('memoryMiB'), storageMiB: left('storageMiB'), gpus: left('gpus') }
}
