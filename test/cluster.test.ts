import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevNetwork } from '../src/dev/network.js'
import { meshletRecordKey } from '../src/identity/link.js'
import { COLLECTIONS } from '../src/records/index.js'
import { balances } from '../src/scheduler/fairshare.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { acceptsWorkFrom, verifiedClusters } from '../src/scheduler/membership.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, setCluster, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { observe, type Observer } from './helpers/observer.js'

let net: DevNetwork
const observers: Observer[] = []

beforeAll(async () => {
  net = await startNetwork()
})
afterAll(async () => {
  await Promise.all(observers.map((o) => o.close()))
  await net?.close()
})

/** `server`'s meshlet offered for a 10-minute-old workload of `owner` and ran it to the end: 40 cpu-seconds served. */
async function serveToTheEnd(owner: Member, server: Member): Promise<void> {
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString()
  const w = await owner.owner.writer.create(COLLECTIONS.workload, workloadRecord({ createdAt: ago(600_000) }))
  const ref = { uri: w.uri, cid: w.cid! }
  await server.meshlet.writer.create(COLLECTIONS.bid, { $type: COLLECTIONS.bid, workload: ref, round: 0, score: 1000, createdAt: ago(599_000) })
  const finishedAt = ago(120_000)
  await server.meshlet.writer.put(COLLECTIONS.workloadStatus, statusRecordKey(w.uri, 0), {
    $type: COLLECTIONS.workloadStatus,
    workload: ref,
    replica: 0,
    state: 'succeeded',
    exitCode: 0,
    cpuMillis: 40_000,
    startedAt: ago(598_000),
    finishedAt,
    updatedAt: finishedAt,
  })
}

const verdictOf = (o: Observer, m: Member) => o.formation.members().find((v) => v.owner === m.owner.did)

describe('cluster formation (real PDS + firehose)', () => {
  it('keeps only mutually verified members of a three-owner cluster', async () => {
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => addMember(net, n)))
    await setCluster(alice, 'garden', [bob, carol])
    await setCluster(bob, 'garden', [alice, carol])
    // carol's meshlet lists only bob: alice is not mutual with carol
    await setCluster(carol, 'garden', [bob])
    const o = await observe(net, alice.meshlet.did)
    observers.push(o)
    expect(verdictOf(o, bob)).toMatchObject({ verified: true, meshlets: [bob.meshlet.did], clusters: ['garden'] })
    expect(verdictOf(o, carol)).toMatchObject({ verified: false, reason: 'not-mutual' })
    expect(verifiedClusters(o.state, alice.meshlet.did).get('garden')).toEqual([bob.owner.did])
    expect(acceptsWorkFrom(o.state, alice.meshlet.did, carol.owner.did)).toBe(false)
    expect(acceptsWorkFrom(o.state, alice.meshlet.did, bob.owner.did)).toBe(true)
  })

  it('excludes a member whose own link does not verify', async () => {
    const [dave, erin] = await Promise.all(['dave', 'erin'].map((n) => addMember(net, n)))
    await setCluster(dave, 'c', [erin])
    await setCluster(erin, 'c', [dave])
    // erin's owner record is removed: erin's meshlet now claims an owner who does not claim it
    await erin.owner.writer.delete(COLLECTIONS.meshlet, meshletRecordKey(erin.meshlet.did))
    const o = await observe(net, dave.meshlet.did)
    observers.push(o)
    expect(verdictOf(o, erin)).toMatchObject({ verified: false, reason: 'no-verified-meshlet' })
  })

  it('puts one meshlet in two overlapping clusters', async () => {
    const [fay, gus, hal] = await Promise.all(['fay', 'gus', 'hal'].map((n) => addMember(net, n)))
    await setCluster(fay, 'north', [gus])
    await setCluster(fay, 'south', [gus, hal])
    await setCluster(gus, 'north', [fay])
    await setCluster(hal, 'south', [fay])
    const o = await observe(net, fay.meshlet.did)
    observers.push(o)
    const clusters = verifiedClusters(o.state, fay.meshlet.did)
    expect(clusters.get('north')).toEqual([gus.owner.did])
    expect([...(clusters.get('south') ?? [])].sort()).toEqual([gus.owner.did, hal.owner.did].sort())
    expect(verdictOf(o, gus)).toMatchObject({ verified: true, clusters: ['north', 'south'] })
  })

  it('follows membership removal and re-adding through the firehose', async () => {
    const [ivy, jon] = await Promise.all(['ivy', 'jon'].map((n) => addMember(net, n)))
    await setCluster(ivy, 'pair', [jon])
    await setCluster(jon, 'pair', [ivy])
    const o = await observe(net, ivy.meshlet.did)
    observers.push(o)
    expect(verdictOf(o, jon)?.verified).toBe(true)

    // jon drops ivy from his cluster record
    await setCluster(jon, 'pair', [])
    await waitFor(() => verdictOf(o, jon)?.verified === false, { what: 'jon dropped (cluster record)', timeoutMs: 10_000 })
    expect(verdictOf(o, jon)).toMatchObject({ reason: 'not-mutual' })
    // and adds her back
    await setCluster(jon, 'pair', [ivy])
    await waitFor(() => verdictOf(o, jon)?.verified === true, { what: 'jon back (cluster record)', timeoutMs: 10_000 })

    // jon deletes the owner side of his link
    await jon.owner.writer.delete(COLLECTIONS.meshlet, meshletRecordKey(jon.meshlet.did))
    await waitFor(() => verdictOf(o, jon)?.verified === false, { what: 'jon dropped (link)', timeoutMs: 10_000 })
    expect(verdictOf(o, jon)).toMatchObject({ reason: 'no-verified-meshlet' })
    await jon.owner.writer.put(COLLECTIONS.meshlet, meshletRecordKey(jon.meshlet.did), {
      $type: COLLECTIONS.meshlet,
      meshlet: jon.meshlet.did,
      createdAt: nowIso(),
    })
    await waitFor(() => verdictOf(o, jon)?.verified === true, { what: 'jon back (link)', timeoutMs: 10_000 })
    // every change arrived through the firehose, signature-verified
    expect(o.changes.filter((c) => c.did === jon.meshlet.did || c.did === jon.owner.did).length).toBeGreaterThanOrEqual(4)
  })

  it('picks up an owner newly named in our cluster record', async () => {
    const [kim, lou] = await Promise.all(['kim', 'lou'].map((n) => addMember(net, n)))
    await setCluster(lou, 'late', [kim])
    const o = await observe(net, kim.meshlet.did)
    observers.push(o)
    expect(verdictOf(o, lou)).toBeUndefined()
    await setCluster(kim, 'late', [lou])
    await waitFor(() => verdictOf(o, lou)?.verified === true, { what: 'lou verified', timeoutMs: 10_000 })
  })

  it('a meshlet that starts later reads the same fair-share history as one that watched it', async () => {
    const [mae, ned, ola] = await Promise.all(['mae', 'ned', 'ola'].map((n) => addMember(net, n)))
    await formCluster('ledger', [mae, ned, ola])
    const watcher = await observe(net, ola.meshlet.did)
    observers.push(watcher)
    // ned's meshlet offered for mae's workload and ran it to the end: 40 cpu-seconds served
    await serveToTheEnd(mae, ned)
    const asOf = Date.now()
    const servers = [mae, ned, ola].map((m) => m.meshlet.did).sort()
    await waitFor(() => (balances(watcher.state, asOf, servers).get(ned.owner.did) ?? 0) === 40_000, { what: 'the watcher counts the history', timeoutMs: 10_000 })
    // a meshlet that was not running then reads it from the repos, workload and offer included
    const late = await observe(net, mae.meshlet.did)
    observers.push(late)
    expect(balances(late.state, asOf, servers)).toEqual(balances(watcher.state, asOf, servers))
    expect(balances(late.state, asOf, servers).get(mae.owner.did)).toBe(-40_000)
  })

  it('a meshlet that starts later counts the same running replicas of a candidate as one that watched them start', async () => {
    const [uma, vic] = await Promise.all(['uma', 'vic'].map((n) => addMember(net, n)))
    const zed = await addMember(net, 'zed') // outside the cluster: nobody here follows zed's workloads
    await formCluster('occupancy', [uma, vic])
    const watcher = await observe(net, uma.meshlet.did)
    observers.push(watcher)
    // vic's meshlet runs a replica of zed's (as under a share grant), started five minutes ago
    const w = await zed.owner.writer.create(COLLECTIONS.workload, workloadRecord({ createdAt: new Date(Date.now() - 400_000).toISOString() }))
    const startedAt = new Date(Date.now() - 300_000).toISOString()
    await vic.meshlet.writer.put(COLLECTIONS.workloadStatus, statusRecordKey(w.uri, 0), {
      $type: COLLECTIONS.workloadStatus,
      workload: { uri: w.uri, cid: w.cid! },
      replica: 0,
      state: 'running',
      startedAt,
      updatedAt: startedAt,
    })
    const at = Date.now() - 120_000
    await waitFor(() => watcher.state.activeReplicasAt(vic.meshlet.did, at) === 1, { what: 'the watcher sees the replica start', timeoutMs: 10_000 })
    const late = await observe(net, vic.meshlet.did)
    observers.push(late)
    expect(late.state.activeReplicasAt(vic.meshlet.did, at)).toBe(1)
  })

  it('counts a replica a followed meshlet served for an owner it does not follow (on a PDS it does not follow), as that owner’s followers do', async () => {
    const pds2 = await net.addPds()
    const [pat, quin, rex] = await Promise.all(['pat', 'quin', 'rex'].map((n) => addMember(net, n)))
    const sam = await addMember(net, 'sam', pds2)
    // pat's meshlet covers pat and quin, and follows quin's members (rex) one hop further; sam is a hop beyond
    await Promise.all([setCluster(pat, 'a', [quin]), setCluster(quin, 'a', [pat, rex]), setCluster(rex, 'a', [quin, sam]), setCluster(sam, 'a', [rex])])
    const watcher = await observe(net, pat.meshlet.did)
    observers.push(watcher)
    expect(watcher.state.capacities.has(rex.meshlet.did) || watcher.state.meshletOwners.has(rex.meshlet.did)).toBe(true)
    // rex's meshlet runs sam's workload to the end, after the watcher started
    await serveToTheEnd(sam, rex)
    const asOf = Date.now()
    await waitFor(() => (balances(watcher.state, asOf, [rex.meshlet.did]).get(rex.owner.did) ?? 0) === 40_000, {
      what: "the watcher reads sam's workload behind rex's finished replica",
      timeoutMs: 20_000,
    })
    expect(balances(watcher.state, asOf, [rex.meshlet.did]).get(sam.owner.did)).toBe(-40_000)
    // the same as a meshlet that follows sam
    const follower = await observe(net, sam.meshlet.did)
    observers.push(follower)
    expect(balances(follower.state, asOf, [rex.meshlet.did])).toEqual(balances(watcher.state, asOf, [rex.meshlet.did]))
  })
})
