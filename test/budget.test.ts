// The write budget: points over a sliding hour, as hosted PDSes count them, and a meshlet
// that runs short declines new work with the reason (a signed answer everyone sees)
// instead of having its writes refused — on the real PDS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { POINTS_PER_REPLICA, WRITE_POINTS, WriteBudget } from '../src/repo/budget.js'
import { place } from '../src/scheduler/placement.js'
import { waitFor } from '../src/util/time.js'
import { addMember, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

describe('WriteBudget', () => {
  it('counts the points of the last hour only', () => {
    let now = 0
    const b = new WriteBudget(100, () => now)
    b.spend(WRITE_POINTS.create)
    now = 30 * 60_000
    b.spend(WRITE_POINTS.update)
    expect(b.used()).toBe(5)
    now = 60 * 60_000 + 1 // the first write is more than an hour old
    expect(b.used()).toBe(2)
  })

  it('refuses new work when what is left cannot carry the held replicas and one more', () => {
    const b = new WriteBudget(30, () => 0)
    expect(b.refusal(0)).toBeUndefined()
    b.spend(30 - POINTS_PER_REPLICA)
    expect(b.refusal(0)).toBeUndefined()
    // one held replica still owes two updates
    expect(b.refusal(1)).toBe(`write budget: ${POINTS_PER_REPLICA} of 30 points left this hour`)
    expect(new WriteBudget(0).refusal(1000)).toBeUndefined()
  })
})

describe('a meshlet short of write points (real PDS)', () => {
  let net: DevNetwork
  let m: Member
  let daemon: Meshlet
  beforeAll(async () => {
    net = await startNetwork()
    m = await addMember(net, 'penny')
    // its first heartbeat (a create, 3 points) leaves less than one replica costs
    daemon = await startMeshlet(net, m, { port: 0, writePointsPerHour: POINTS_PER_REPLICA + 2 })
  }, 60_000)
  afterAll(async () => {
    await daemon?.close()
    await net?.close()
  })

  it('declines with the reason, visibly, and keeps running', async () => {
    const { uri } = await m.owner.writer.create(COLLECTIONS.workload, workloadRecord({ queueTimeoutSeconds: 10 }))
    const reason = await waitFor(
      () => place(daemon.ctx.state, uri, Date.now())?.whyNot.find((w) => w.meshlet === m.meshlet.did && w.reason.startsWith('declined:'))?.reason,
      { what: 'the decline', timeoutMs: 30_000 },
    )
    expect(reason).toMatch(/^declined:write budget: \d+ of 12 points left this hour$/)
    expect(place(daemon.ctx.state, uri, Date.now())?.phase).not.toBe('placed')
    expect(daemon.capacityRecord().declining).toMatch(/^write budget: /)
    const health = await fetch(`${daemon.url}/xrpc/farm.meshlet.health`)
    expect(health.status).toBe(200)
  })
})
