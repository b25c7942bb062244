// Re-placement on the real network: a meshlet running a replica stops heartbeating, and
// after three missed heartbeats the others place the replica elsewhere, with no coordinator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

const HEARTBEAT_SECONDS = 10
let net: DevNetwork
let members: Member[]
const daemons = new Map<string, Meshlet>()

beforeAll(async () => {
  net = await startNetwork()
  members = await Promise.all(['amy', 'bo', 'cy'].map((n) => addMember(net, n)))
  await formCluster('r', members)
  for (const m of members) daemons.set(m.name, await startMeshlet(net, m, { heartbeatSeconds: HEARTBEAT_SECONDS }))
  await waitFor(() => members.every((m) => daemons.get(m.name)!.ctx.state.capacities.size >= 3), { what: 'capacities' })
}, 60_000)

afterAll(async () => {
  await Promise.all([...daemons.values()].map((d) => d.close()))
  await net?.close()
})

describe('re-placement without a coordinator', () => {
  it('moves a lost meshlet’s replica to the next candidate once its heartbeat lapses, and everyone agrees', async () => {
    const cy = members[2]
    const { uri } = await cy.owner.writer.create(COLLECTIONS.workload, {
      $type: COLLECTIONS.workload,
      image: 'meshlet-test/busybox:latest',
      resources: { cpuMillis: 100, memoryMiB: 64 },
      replicas: 1,
      createdAt: nowIso(),
    })
    const amy = daemons.get('amy')!
    const bo = daemons.get('bo')!
    await waitFor(() => place(amy.ctx.state, uri, Date.now())?.selected[0]?.meshlet === cy.meshlet.did, { what: 'placed on cy' })
    // cy's meshlet dies: no more heartbeats
    await daemons.get('cy')!.close()
    daemons.delete('cy')
    const moved = await waitFor(
      () => {
        const a = place(amy.ctx.state, uri, Date.now())
        const b = place(bo.ctx.state, uri, Date.now())
        return a?.phase === 'placed' && a.selected[0]?.meshlet !== cy.meshlet.did && JSON.stringify(a.selected) === JSON.stringify(b?.selected) ? a : undefined
      },
      { what: 'placement elsewhere', timeoutMs: 8 * HEARTBEAT_SECONDS * 1000, intervalMs: 200 },
    )
    expect(moved.whyNot).toContainEqual({ meshlet: cy.meshlet.did, reason: 'lost:heartbeat-expired' })
    const winner = moved.selected[0].meshlet
    expect(winner).not.toBe(cy.meshlet.did)
    expect([members[0].meshlet.did, members[1].meshlet.did]).toContain(winner)
    // the winner recorded its replica, seen by the other survivor
    const other = winner === amy.did ? bo : amy
    await waitFor(() => other.ctx.state.statusesFor(uri).some((s) => s.did === winner && s.record.state === 'scheduled'), { what: 'the replacement’s status' })
  }, 90_000)
})
