// Re-placement on the real network: a meshlet running a replica stops heartbeating, and
// after three missed heartbeats the others place the replica elsewhere, with no coordinator;
// a member that heartbeats but never answers is passed over once its answer is overdue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, publishCapacity, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

const HEARTBEAT_SECONDS = 10
let net: DevNetwork
let members: Member[]
const daemons = new Map<string, Meshlet>()

beforeAll(async () => {
  net = await startNetwork()
  // dee's machine runs no daemon: the test writes its records (a member that never answers)
  members = await Promise.all(['amy', 'bo', 'cy', 'dee'].map((n) => addMember(net, n)))
  await formCluster('r', members)
  for (const m of members.slice(0, 3)) daemons.set(m.name, await startMeshlet(net, m, { heartbeatSeconds: HEARTBEAT_SECONDS }))
  await waitFor(() => [...daemons.values()].every((d) => d.ctx.state.capacities.size >= 3), { what: 'capacities' })
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

  it('passes over a member that heartbeats but never answers, at its first heartbeat after its answer was due', async () => {
    const dee = members[3]
    const amy = daemons.get('amy')!
    const bo = daemons.get('bo')!
    await publishCapacity(dee, { heartbeatSeconds: HEARTBEAT_SECONDS, onlineSince: new Date(Date.now() - 60_000).toISOString() })
    await waitFor(() => amy.ctx.state.capacities.has(dee.meshlet.did) && bo.ctx.state.capacities.has(dee.meshlet.did), { what: 'dee’s heartbeat' })
    // dee's own workload: its meshlet ranks first, so the round waits for it
    const { uri } = await dee.owner.writer.create(COLLECTIONS.workload, workloadRecord({ answerDeadlineSeconds: 5 }))
    const waiting = await waitFor(() => place(amy.ctx.state, uri, Date.now()), { what: 'the workload at amy' })
    expect(waiting.candidates[0].did).toBe(dee.meshlet.did)
    expect(waiting.whyNot).toContainEqual({ meshlet: dee.meshlet.did, reason: 'awaiting-answer' })
    expect(waiting.confirmed).toEqual([])
    // a heartbeat stamped past its due time, with no answer before it, proves dee silent
    const due = Date.parse(amy.ctx.state.workloads.get(uri)!.record.createdAt) + 5000
    await waitFor(() => Date.now() > due, { what: 'the due time', intervalMs: 100 })
    await publishCapacity(dee, { heartbeatSeconds: HEARTBEAT_SECONDS, onlineSince: new Date(Date.now() - 60_000).toISOString() })
    const moved = await waitFor(
      () => {
        const a = place(amy.ctx.state, uri, Date.now())
        const b = place(bo.ctx.state, uri, Date.now())
        return a?.phase === 'placed' && a.confirmed.length === 1 && JSON.stringify(a.selected) === JSON.stringify(b?.selected) ? a : undefined
      },
      { what: 'placement past the silent member', timeoutMs: 60_000, intervalMs: 200 },
    )
    expect(moved.whyNot).toContainEqual({ meshlet: dee.meshlet.did, reason: 'lost:no-answer' })
    // the winner holds its offer's reserved replica, as the others see (these daemons run no driver)
    const other = moved.confirmed[0] === amy.did ? bo : amy
    await waitFor(() => other.ctx.state.statusesFor(uri).some((s) => s.did === moved.confirmed[0] && s.record.state === 'scheduled'), { what: 'the winner’s status' })
    expect(other.ctx.state.bidsFor(uri).filter((b) => b.did === dee.meshlet.did)).toEqual([])
  }, 120_000)
})
