import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { nowIso, sleep, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member, workloadRecord } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

let net: DevNetwork
let members: Member[]
let outsider: Member
const daemons = new Map<string, Meshlet>()

beforeAll(async () => {
  net = await startNetwork()
  members = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => addMember(net, n)))
  outsider = await addMember(net, 'frank')
  await formCluster('commune', members)
  for (const m of [...members, outsider]) {
    daemons.set(m.name, await startMeshlet(net, m))
  }
  // every member sees every other member's capacity before work arrives
  await waitFor(() => members.every((m) => daemons.get(m.name)!.ctx.state.capacities.size >= members.length), { what: 'capacities' })
}, 120_000)

afterAll(async () => {
  await Promise.all([...daemons.values()].map((d) => d.close()))
  await net?.close()
})

const workload = workloadRecord

/** Each daemon's placement of a workload, as the JSON the core produces once settled. */
function views(uri: string, names = members.map((m) => m.name)): string[] {
  return names.map((n) => {
    const d = daemons.get(n)!
    const p = place(d.ctx.state, uri, Date.now())
    return JSON.stringify(p ? { phase: p.phase, settled: p.settled, selected: p.selected, placed: p.placed, reason: p.reason, candidates: p.candidates.map((c) => c.did) } : null)
  })
}

/** Waits until every daemon has seen the same settled placement (the protocol promises it once records stop changing). */
async function agreed(uri: string, names?: string[]) {
  return waitFor(
    () => {
      const v = views(uri, names)
      const first = JSON.parse(v[0])
      return first?.settled && v.every((x) => x === v[0]) ? first : undefined
    },
    { what: `agreement on ${uri}`, timeoutMs: 60_000 },
  )
}

describe('placement without a coordinator (5 meshlets, real PDS + firehose)', () => {
  it('places 20 workloads identically on every meshlet, with status records from the winners', async () => {
    const alice = members[0]
    const specs: WorkloadRecord[] = Array.from({ length: 20 }, (_, i) =>
      workload({
        name: `w${i}`,
        replicas: (i % 3) + 1,
        resources: { cpuMillis: [250, 500, 1000, 2000][i % 4], memoryMiB: [128, 512, 1024][i % 3] },
      }),
    )
    // two that cannot be fully placed: 6 replicas across 5 meshlets without packing,
    // and one too large for anyone
    specs.push(workload({ name: 'wide', replicas: 6 }))
    specs.push(workload({ name: 'huge', resources: { cpuMillis: 512000, memoryMiB: 256 } }))
    const owners = [alice, members[1], members[2]]
    const uris: string[] = []
    for (const [i, spec] of specs.entries()) {
      const res = await owners[i % owners.length].owner.writer.create(COLLECTIONS.workload, spec)
      uris.push(res.uri)
    }
    for (const [i, uri] of uris.entries()) {
      const p = await agreed(uri)
      const want = specs[i].replicas

      if (specs[i].name === 'huge') {
        // nobody can take it: queued, visibly, with the reason (not silently unplaced)
        expect(p).toMatchObject({ phase: 'queued', placed: 0, candidates: [] })
        expect(p.reason).toMatch(/no eligible meshlet \(\d+ infeasible:cpu/)
        continue
      }
      if (specs[i].name === 'wide') {
        expect(p).toMatchObject({ phase: 'queued', placed: 5 })
        expect(p.reason).toMatch(/^1 replica\(s\) queued/)
      } else expect(p).toMatchObject({ phase: 'placed', placed: want })
      // distinct meshlets, all members, never the outsider
      const selected = p.selected.map((s: { meshlet: string }) => s.meshlet)
      expect(new Set(selected).size).toBe(selected.length)
      expect(selected).not.toContain(outsider.meshlet.did)
      // the winners' status records are visible to everyone
      for (const s of p.selected as { meshlet: string; replicas: number }[]) {
        const statusUri = `at://${s.meshlet}/${COLLECTIONS.workloadStatus}/${statusRecordKey(uri, 0)}`
        await waitFor(() => members.every((m) => daemons.get(m.name)!.ctx.state.statuses.has(statusUri)), { what: `status ${statusUri}` })
        const st = daemons.get('bob')!.ctx.state.statuses.get(statusUri)!.record
        expect(st.state).toBe('scheduled')
      }
    }
    await Promise.all([...daemons.values()].map((d) => d.ctx.engine.idle()))
    // the outsider never bid
    const bidders = new Set([...daemons.get('alice')!.ctx.state.bids.values()].map((b) => b.did))
    expect(bidders.has(outsider.meshlet.did)).toBe(false)
    // The write budget, as the protocol promises it whatever the machine's speed: invitations
    // follow answers, not time, so only the meshlets that take a replica write (a bid and its
    // `scheduled` status, in one commit), and nobody writes for the huge workload. Plus one
    // capacity record per daemon at start.
    for (const [i, uri] of uris.entries()) {
      const records = members.reduce((n, m) => n + (daemons.get(m.name)!.ctx.engine.writesPerWorkload.get(uri) ?? 0), 0)
      const placed = specs[i].name === 'huge' ? 0 : Math.min(specs[i].replicas, members.length)
      expect({ uri, records }).toEqual({ uri, records: 2 * placed })
    }
    const replicas = specs.reduce((n, s) => n + Math.min(s.replicas, s.name === 'huge' ? 0 : 5), 0)
    const commits = members.reduce((n, m) => n + daemons.get(m.name)!.ctx.writer.commits, 0)
    expect(commits).toBeLessThanOrEqual(replicas + members.length)
  })

  it('ignores invalid and forged inputs without crashing', async () => {
    const [alice, bob] = members
    const good = await alice.owner.writer.create(COLLECTIONS.workload, workload({ name: 'target' }))
    const goodCid = good.cid!
    const frankWriter = outsider.meshlet.writer
    // a bid for a workload that does not exist
    await bob.meshlet.writer.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: `at://${alice.owner.did}/${COLLECTIONS.workload}/3kaaaaaaaaaaa`, cid: goodCid },
      round: 0,
      score: 999999,
      createdAt: nowIso(),
    })
    // a bid from a non-member with a huge score
    await frankWriter.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: good.uri, cid: goodCid },
      round: 0,
      score: 1000000,
      createdAt: nowIso(),
    })
    // a bid for an older version of the workload
    await bob.meshlet.writer.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: good.uri, cid: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' },
      round: 0,
      score: 1,
      createdAt: nowIso(),
    })
    // a record that fails its lexicon, written around meshlet's own validation
    await bob.meshlet.writer.agent.com.atproto.repo.createRecord({
      repo: bob.meshlet.did,
      collection: COLLECTIONS.bid,
      record: { $type: COLLECTIONS.bid, workload: { uri: 'nope' }, round: -1, score: 'high', createdAt: 'yesterday' },
      validate: false,
    })
    const p = await agreed(good.uri)
    expect(p.placed).toBe(1)
    expect(p.selected[0].meshlet).not.toBe(outsider.meshlet.did)
    const d = daemons.get('carol')!
    const placement = place(d.ctx.state, good.uri, Date.now())!
    const reasons = placement.rejected.map((r) => r.reason).sort()
    expect(reasons).toContain('not-a-candidate')
    expect(reasons).toContain('wrong-workload-cid')
    await waitFor(() => d.ctx.ingestor.stats.invalid > 0, { what: 'the invalid record to be seen and skipped' })
    // a second answer from the winner changes nothing once it runs; two different answers
    // from one meshlet count as a decline, so no later record can turn a decline into an offer
    const winner = members.find((m) => m.meshlet.did === p.selected[0].meshlet)!
    await winner.meshlet.writer.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: good.uri, cid: goodCid },
      round: 0,
      score: 5,
      decline: true,
      createdAt: nowIso(),
    })
    await sleep(300)
    const again = await agreed(good.uri)
    expect(again.placed).toBe(1)
    // every daemon is still alive and working
    const next = await alice.owner.writer.create(COLLECTIONS.workload, workload({ name: 'after' }))
    expect((await agreed(next.uri)).placed).toBe(1)
  })
})
