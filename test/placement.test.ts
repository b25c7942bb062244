import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { nowIso, sleep, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

let net: DevNetwork
let members: Member[]
let outsider: Member
const daemons = new Map<string, Meshlet>()

const WINDOW_MS = 5000

beforeAll(async () => {
  net = await startNetwork()
  members = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => addMember(net, n)))
  outsider = await addMember(net, 'frank')
  await formCluster('commune', members)
  for (const m of [...members, outsider]) {
    daemons.set(m.name, await startMeshlet(net, m, { bidWindowMs: WINDOW_MS, graceMs: 500 }))
  }
  // every member sees every other member's capacity before work arrives
  await waitFor(() => members.every((m) => daemons.get(m.name)!.ctx.state.capacities.size >= members.length), { what: 'capacities' })
}, 120_000)

afterAll(async () => {
  await Promise.all([...daemons.values()].map((d) => d.close()))
  await net?.close()
})

function workload(over: Partial<WorkloadRecord> = {}): WorkloadRecord {
  return {
    $type: COLLECTIONS.workload,
    image: 'meshlet-test/busybox:latest',
    command: ['echo', 'hi'],
    resources: { cpuMillis: 500, memoryMiB: 256 },
    replicas: 1,
    bidWindowMs: WINDOW_MS,
    createdAt: nowIso(),
    ...over,
  }
}

/** Each daemon's placement of a workload, as the JSON the core produces after close. */
function views(uri: string, names = members.map((m) => m.name)): string[] {
  return names.map((n) => {
    const d = daemons.get(n)!
    const p = place(d.ctx.state, uri, Date.now())
    return JSON.stringify(p ? { closed: p.closed, selected: p.selected, placed: p.placed, candidates: p.candidates.map((c) => c.did) } : null)
  })
}

async function agreed(uri: string, names?: string[]) {
  return waitFor(
    () => {
      const v = views(uri, names)
      const first = JSON.parse(v[0])
      return first?.closed && v.every((x) => x === v[0]) ? first : undefined
    },
    { what: `agreement on ${uri}`, timeoutMs: 20_000 },
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
        expect(p.placed).toBe(0)
        expect(p.candidates).toEqual([])
        continue
      }
      if (specs[i].name === 'wide') expect(p.placed).toBe(5)
      else expect(p.placed).toBe(want)
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
        // a partial placement says so in the status; a full one needs no extra write
        if (p.placed < want) await waitFor(() => daemons.get('bob')!.ctx.state.statuses.get(statusUri)!.record.placed === p.placed, { what: 'partial placement noted' })
        else expect(st.placed).toBeUndefined()
      }
    }
    // the outsider never bid
    const bidders = new Set([...daemons.get('alice')!.ctx.state.bids.values()].map((b) => b.did))
    expect(bidders.has(outsider.meshlet.did)).toBe(false)
    // the write budget: one commit per placed replica (bid and `scheduled` status batched),
    // each member's capacity heartbeat, and a little room for bidders that yield — not a
    // bid from every member for every workload
    const commits = members.reduce((n, m) => n + daemons.get(m.name)!.ctx.writer.commits, 0)
    const replicas = specs.reduce((n, s) => n + Math.min(s.replicas, s.name === 'huge' ? 0 : 5), 0)
    expect(commits).toBeLessThanOrEqual(replicas + members.length + Math.ceil(replicas / 4))
    expect(commits).toBeLessThan(specs.length * members.length)
  })

  it('ignores invalid and forged inputs without crashing', async () => {
    const [alice, bob] = members
    const good = await alice.owner.writer.create(COLLECTIONS.workload, workload({ name: 'target', bidWindowMs: 4000 }))
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
    // a bid dated outside the window
    await bob.meshlet.writer.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: good.uri, cid: goodCid },
      round: 0,
      score: 1,
      createdAt: new Date(Date.now() + 3_600_000).toISOString(),
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
    expect(reasons).toContain('after-window')
    await waitFor(() => d.ctx.ingestor.stats.invalid > 0, { what: 'the invalid record to be seen and skipped' })
    // duplicate: bob bids again; only one bid per meshlet counts
    await bob.meshlet.writer.create(COLLECTIONS.bid, {
      $type: COLLECTIONS.bid,
      workload: { uri: good.uri, cid: goodCid },
      round: 0,
      score: 5,
      createdAt: nowIso(),
    })
    await sleep(300)
    const again = await agreed(good.uri)
    expect(again.selected).toEqual(p.selected)
    // every daemon is still alive and working
    const next = await alice.owner.writer.create(COLLECTIONS.workload, workload({ name: 'after' }))
    expect((await agreed(next.uri)).placed).toBe(1)
  })
})
