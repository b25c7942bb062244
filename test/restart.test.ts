import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

let net: DevNetwork
let members: Member[]
const daemons = new Map<string, Meshlet>()
const dirs = new Map<string, string>()

beforeAll(async () => {
  net = await startNetwork()
  members = await Promise.all(['alice', 'bob', 'carol'].map((n) => addMember(net, n)))
  await formCluster('c', members)
  for (const m of members) {
    dirs.set(m.name, fs.mkdtempSync(path.join(os.tmpdir(), `meshlet-restart-${m.name}-`)))
    daemons.set(m.name, await start(m))
  }
}, 60_000)
afterAll(async () => {
  await Promise.all([...daemons.values()].map((d) => d.close()))
  await net?.close()
})

const start = (m: Member) => startMeshlet(net, m, { dataDir: dirs.get(m.name) })

const spec = (name: string): WorkloadRecord => ({
  $type: COLLECTIONS.workload,
  name,
  image: 'meshlet-test/busybox:latest',
  resources: { cpuMillis: 500, memoryMiB: 128 },
  replicas: 1,
  createdAt: nowIso(),
})

const selection = (d: Meshlet, uri: string) => {
  const p = place(d.ctx.state, uri, Date.now())
  return p?.settled ? JSON.stringify(p.selected) : undefined
}

describe('a restarted meshlet resumes from its cursor', () => {
  it('neither misses nor repeats a placement', async () => {
    const carol = members[2]
    const alice = daemons.get('alice')!
    // carol's own workloads go to carol's meshlet first
    const before = [await carol.owner.writer.create(COLLECTIONS.workload, spec('b1')), await carol.owner.writer.create(COLLECTIONS.workload, spec('b2'))]
    for (const w of before) {
      await waitFor(() => members.every((m) => selection(daemons.get(m.name)!, w.uri) === selection(alice, w.uri) && selection(alice, w.uri)), { what: 'agreement before restart' })
      expect(JSON.parse(selection(alice, w.uri)!)[0].meshlet).toBe(carol.meshlet.did)
    }
    const carolDaemon = daemons.get('carol')!
    await waitFor(() => before.every((w) => carolDaemon.ctx.state.statusesFor(w.uri).some((s) => s.did === carol.meshlet.did)), { what: 'carol statuses' })
    const cursorBefore = carolDaemon.ctx.db.getCursor(carolDaemon.ctx.ingestor.sources()[0])
    expect(cursorBefore).toBeGreaterThan(0)
    await carolDaemon.close()
    daemons.delete('carol')

    // while carol is down, more work arrives: what ranks others first is placed without her;
    // her own workload waits for her answer (a slow or absent meshlet costs time, not a replica)
    const during = [await carol.owner.writer.create(COLLECTIONS.workload, spec('d1')), await members[0].owner.writer.create(COLLECTIONS.workload, spec('d2'))]
    await waitFor(() => selection(alice, during[1].uri) && selection(daemons.get('bob')!, during[1].uri) === selection(alice, during[1].uri), { what: 'agreement without carol', timeoutMs: 20_000 })
    const waiting = place(alice.ctx.state, during[0].uri, Date.now())!
    expect(waiting).toMatchObject({ phase: 'placing', invited: [carol.meshlet.did] })
    expect(waiting.whyNot).toContainEqual({ meshlet: carol.meshlet.did, reason: 'awaiting-answer' })

    const restarted = await start(carol)
    daemons.set('carol', restarted)
    // it caught up through the cursor: the workloads published while it was down are known
    for (const w of [...before, ...during]) {
      await waitFor(() => selection(alice, w.uri) && selection(restarted, w.uri) === selection(alice, w.uri), { what: `carol agrees on ${w.uri}`, timeoutMs: 30_000 })
    }
    expect(restarted.ctx.db.getCursor(restarted.ctx.ingestor.sources()[0])).toBeGreaterThan(cursorBefore!)
    // and repeated nothing: one bid per workload at most, and no new bid or status writes
    await restarted.ctx.engine.idle()
    const carolBids = [...alice.ctx.state.bids.values()].filter((b) => b.did === carol.meshlet.did)
    const perWorkload = new Map<string, number>()
    for (const b of carolBids) perWorkload.set(b.record.workload.uri, (perWorkload.get(b.record.workload.uri) ?? 0) + 1)
    expect([...perWorkload.values()].every((n) => n === 1)).toBe(true)
    // carol came back after her own workload was created: a late joiner for it, she is no
    // longer awaited, the next candidate takes it, and carol wrote her heartbeat only
    expect(JSON.parse(selection(alice, during[0].uri)!)[0].meshlet).not.toBe(carol.meshlet.did)
    expect(restarted.ctx.writer.ops).toBe(1)
  })
})
