// Small numeric helpers shared by the benchmarks.

/** Wall-clock milliseconds with sub-millisecond resolution, on the clock the Docker engine stamps its events with. */
export const wallMs = (): number => performance.timeOrigin + performance.now()

/** Nearest-rank quantile (q in 0..1) of a non-empty sample. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5)

export const round1 = (x: number): number => Math.round(x * 10) / 10

/** A ratio to two decimals. */
export const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100
