// The data disk and the floor that protects the lender's machine: a meshlet declines new
// work when free disk, minus what the work asks for, would fall under the floor
// (default max(20 % of the disk, 50 GiB), configurable; a share grant may raise it).
import fs from 'node:fs'

/** What the capacity record's `disk` carries. */
export interface DiskUsage {
  totalMiB: number
  freeMiB: number
  floorMiB: number
}

export const DEFAULT_FLOOR_FRACTION = 0.2
export const DEFAULT_FLOOR_MIN_MIB = 50 * 1024

/** max(20 % of the disk, 50 GiB), unless configured (0 turns the floor off). */
export function diskFloorMiB(totalMiB: number, configuredMiB?: number): number {
  if (configuredMiB !== undefined) return Math.max(0, Math.floor(configuredMiB))
  return Math.max(Math.ceil(totalMiB * DEFAULT_FLOOR_FRACTION), DEFAULT_FLOOR_MIN_MIB)
}

/** Total and free space (what an unprivileged writer may use) of the filesystem holding `dir`. */
export function readDisk(dir: string, configuredFloorMiB?: number): DiskUsage | undefined {
  let st: fs.StatsFs
  try {
    st = fs.statfsSync(dir)
  } catch {
    return undefined
  }
  const totalMiB = Math.floor((st.blocks * st.bsize) / 2 ** 20)
  const freeMiB = Math.floor((st.bavail * st.bsize) / 2 ** 20)
  return { totalMiB, freeMiB, floorMiB: diskFloorMiB(totalMiB, configuredFloorMiB) }
}

/**
 * Reads the disk at most once per `maxAgeMs`: the engine asks for every workload it
 * evaluates, and free space does not need to be fresher than that.
 */
export function diskReader(dir: string, configuredFloorMiB?: number, maxAgeMs = 1000, now = () => Date.now()): () => DiskUsage | undefined {
  let last: { at: number; value: DiskUsage | undefined } | undefined
  return () => {
    const t = now()
    if (!last || t - last.at >= maxAgeMs) last = { at: t, value: readDisk(dir, configuredFloorMiB) }
    return last.value
  }
}

/**
 * The decline reason when taking `needMiB` more would leave less free than the floor
 * (the larger of the meshlet's and `minFreeMiB`, a grant's), else undefined.
 */
export function diskFloorRefusal(disk: DiskUsage, needMiB: number, minFreeMiB = 0): string | undefined {
  const floor = Math.max(disk.floorMiB, minFreeMiB)
  return disk.freeMiB - needMiB < floor ? `disk floor: ${disk.freeMiB} MiB free, floor ${floor} MiB` : undefined
}
