// CPU time and peak memory of a container, read from its cgroup while it runs (a
// stopped container's stats read as zero, and its cgroup is gone once it exits).
import fs from 'node:fs'

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
