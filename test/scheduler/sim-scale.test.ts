// A scaled-down `npm run sim` (sim/commune.ts): a commune in discrete simulated time,
// with overlapping clusters, a lossy, duplicating, delayed firehose, partitions, deaths
// and returns, clock skew and adversarial members, driving the real place() and decide().
import { describe, expect, it } from 'vitest'
import { simulate, type SimReport } from '../../sim/commune.js'

/** What a run measures of the machine rather than of the protocol. */
const machine = (r: SimReport) => ({ ...r, wallSeconds: 0, cpuMicrosPerDeliveredEvent: 0, heapBytesPerMeshlet: 0 })

describe('npm run sim, scaled down', () => {
  it('settles every workload with no violation and writes within the bound', () => {
    const r = simulate({ meshlets: 30, workloads: 40, seed: 20261124 })
    expect(r.violations).toEqual({ count: 0, first: [] })
    expect(r.settled.unsettled).toBe(0)
    expect(r.settled.placed + r.settled.queued + r.settled.failed).toBe(40)
    // the protocol's bound: 1 + 2 × replicas records to place a workload (the workload, then an
    // offer and its `scheduled` status per replica); only a loss or an adversary may cost more
    expect(r.placementRecordsPerWorkload).toBeGreaterThan(1)
    expect(r.placementRecordsPerWorkload).toBeLessThanOrEqual(r.boundPerWorkload)
    expect(r.placementOverBound.untouchedByLossOrAdversary).toBe(0)
    // and each placed replica then reports itself running and finished: about three commits each
    expect(r.commitsPerPlacedReplica).toBeGreaterThan(2)
    expect(r.eventsDelivered).toBeGreaterThan(0)
    expect(r.deaths).toBeGreaterThan(0)
    expect(r.adversaries).toBeGreaterThan(0)
  }, 600_000)

  it('is deterministic: the same seed gives the same report', () => {
    const a = simulate({ meshlets: 15, workloads: 10, seed: 7 })
    const b = simulate({ meshlets: 15, workloads: 10, seed: 7 })
    expect(machine(a)).toEqual(machine(b))
    expect(a.violations.count).toBe(0)
  }, 600_000)
})
