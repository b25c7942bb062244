// The persistent outbox against a real PDS behind a proxy that fails writes (500, 429,
// dropped connections): nothing queued is lost across failures and restarts, the latest
// version of each record is what lands, a rate limit's reset is honoured, and a meshlet
// whose writes fail takes part in placement once its PDS heals.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import { LocalDb } from '../src/db/index.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type BidRecord, type WorkloadRecord, type WorkloadStatusRecord } from '../src/records/index.js'
import { Outbox, type OutboxEntry, type OutboxOptions } from '../src/repo/outbox.js'
import { RepoReader } from '../src/repo/reader.js'
import { RepoWriter } from '../src/repo/writer.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { place } from '../src/scheduler/placement.js'
import { silentLogger } from '../src/util/logger.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member, workloadRecord } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'
import { startFlakyProxy, type FlakyProxy } from './helpers/flaky-proxy.js'

let net: DevNetwork
let reader: RepoReader
const proxies: FlakyProxy[] = []
const outboxes: { outbox: Outbox; db: LocalDb }[] = []
const daemons: Meshlet[] = []

const LONG = { timeoutMs: 120_000 }

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
}, 120_000)

afterAll(async () => {
  for (const { outbox, db } of outboxes) {
    await outbox.close()
    if (db.db.open) db.close()
  }
  await Promise.allSettled(daemons.map((d) => d.close()))
  await Promise.allSettled(proxies.map((p) => p.close()))
  await net?.close()
}, 120_000)

async function proxy(): Promise<FlakyProxy> {
  const p = await startFlakyProxy(net.pdsUrl)
  proxies.push(p)
  return p
}

function openOutbox(file: string, writer: RepoWriter, over: Partial<OutboxOptions> = {}): Outbox {
  const db = new LocalDb(file)
  const outbox = new Outbox({ db, writer, logger: silentLogger(), minBackoffMs: 20, maxBackoffMs: 200, ...over })
  outboxes.push({ outbox, db })
  return outbox
}

async function closeOutbox(outbox: Outbox): Promise<void> {
  const i = outboxes.findIndex((o) => o.outbox === outbox)
  const [{ db }] = outboxes.splice(i, 1)
  await outbox.close()
  db.close()
}

const workload = workloadRecord

type Ref = { uri: string; cid: string }
/** A well-formed cid of some other version of a record. */
const OTHER_CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm'

function status(ref: Ref, replica: number, state: string, extra: Partial<WorkloadStatusRecord> = {}): WorkloadStatusRecord {
  return { $type: COLLECTIONS.workloadStatus, workload: ref, replica, round: 0, state, ...extra, updatedAt: nowIso() }
}

function bid(ref: Ref, score = 1500): BidRecord {
  return { $type: COLLECTIONS.bid, workload: ref, round: 0, score, createdAt: nowIso() }
}

/** A record as the real PDS holds it (read there directly, never through the proxy). */
async function onPds(did: string, collection: typeof COLLECTIONS.bid | typeof COLLECTIONS.workloadStatus, rkey: string) {
  const r = await reader.get(did, collection, rkey)
  if (r.ok) return r.value.record as Record<string, unknown>
  if (r.reason === 'missing') return undefined
  throw new Error(r.detail)
}

async function repoKeys(did: string): Promise<string[]> {
  const out: string[] = []
  for (const c of [COLLECTIONS.bid, COLLECTIONS.workloadStatus] as const) {
    for (const r of (await reader.list(did, c)).records) out.push(`${c}/${r.rkey}`)
  }
  return out.sort()
}

const keyOf = (e: { collection: string; rkey: string }) => `${e.collection}/${e.rkey}`
const strip = (r: Record<string, unknown> | undefined) => {
  if (!r) return r
  const { $type: _t, ...rest } = r
  return rest
}

describe('outbox against a failing PDS', () => {
  let account: DevAccount
  let writer: RepoWriter
  let ref: Ref
  let p: FlakyProxy

  beforeAll(async () => {
    p = await proxy()
    account = await net.createAccount('box')
    writer = await RepoWriter.login(p.url, account.handle, account.password)
    const owner = await net.createAccount('boxowner')
    const w = await owner.writer.create(COLLECTIONS.workload, workload({ name: 'target' }))
    ref = { uri: w.uri, cid: w.cid! }
  }, 60_000)

  it('keeps writes through 500s, dropped connections and a restart, then writes the latest of each', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-')), 'meshlet.sqlite')
    p.setMode('500')
    let outbox = openOutbox(file, writer)
    const bidKey = Outbox.newKey()
    const firstBid = bid(ref)
    outbox.enqueue([
      { collection: COLLECTIONS.bid, rkey: bidKey, record: firstBid },
      { collection: COLLECTIONS.workloadStatus, rkey: 'r0', record: status(ref, 0, 'scheduled') },
    ])
    const done = status(ref, 1, 'succeeded', { exitCode: 0, cpuMillis: 1234, finishedAt: nowIso() })
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r1', record: done }])
    await waitFor(() => outbox.stats.failedAttempts >= 2, { what: 'failed attempts', ...LONG })

    // a newer version of r0 replaces the unsent one; a finished r1 is not replaced by an unfinished one
    const running = status(ref, 0, 'running', { startedAt: nowIso() })
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r0', record: running }])
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r1', record: status(ref, 1, 'running') }])
    await waitFor(() => outbox.pending().every((e) => e.attempts >= 3), { what: 'attempts to grow on every entry', ...LONG })

    expect(p.counts.failed).toBeGreaterThanOrEqual(3)
    expect(p.counts.forwarded).toBe(0)
    expect(outbox.depth).toBeGreaterThan(0)
    expect(outbox.stats.written).toBe(0)
    expect(await repoKeys(account.did)).toEqual([])

    // restart: a new outbox on the same file finds everything that was queued
    const queued = new Set(outbox.pending().map(keyOf))
    expect(queued).toEqual(new Set([`${COLLECTIONS.bid}/${bidKey}`, `${COLLECTIONS.workloadStatus}/r0`, `${COLLECTIONS.workloadStatus}/r1`]))
    await closeOutbox(outbox)
    p.setMode('reset')
    outbox = openOutbox(file, writer)
    expect(new Set(outbox.pending().map(keyOf))).toEqual(queued)
    expect(outbox.pending().every((e) => e.attempts >= 3)).toBe(true)
    const failedBefore = p.counts.failed
    void outbox.flush() // what the daemon does at start, once it believed its queued records
    await waitFor(() => outbox.stats.failedAttempts >= 2, { what: 'failed attempts after the restart', ...LONG })
    expect(p.counts.failed).toBeGreaterThan(failedBefore)
    expect(p.counts.forwarded).toBe(0)
    expect(await repoKeys(account.did)).toEqual([])

    // the PDS heals: everything lands, the latest version of each record
    p.setMode(null)
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    expect(outbox.stats).toMatchObject({ written: 3, commits: 1, dropped: 0 })
    expect(await repoKeys(account.did)).toEqual([...queued].sort())
    expect(strip(await onPds(account.did, COLLECTIONS.bid, bidKey))).toEqual(strip(firstBid as never))
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r0'))).toEqual(strip(running as never))
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r1'))).toEqual(strip(done as never))
    await closeOutbox(outbox)
  }, 240_000)

  it('never replaces a finished status with an unfinished one, even while the finished one is in flight', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-')), 'meshlet.sqlite')
    const outbox = openOutbox(file, writer)
    const done = status(ref, 2, 'failed', { exitCode: 3, finishedAt: nowIso() })
    p.setMode('hold')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r2', record: done }])
    await waitFor(() => p.counts.held === 1, { what: 'the write to be in flight', ...LONG })
    // while it is in flight: an unfinished put of the same record, and a newer put of another
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r2', record: status(ref, 2, 'running') }])
    const first3 = status(ref, 3, 'scheduled')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r3', record: first3 }])
    const failedBefore = outbox.stats.failedAttempts
    p.setMode('500') // the in-flight write fails and is retried
    await waitFor(() => outbox.stats.failedAttempts > failedBefore, { what: 'the in-flight write to fail', ...LONG })
    const latest3 = status(ref, 3, 'running', { startedAt: nowIso() })
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r3', record: latest3 }])
    p.setMode(null)
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r2'))).toEqual(strip(done as never))
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r3'))).toEqual(strip(latest3 as never))

    // and once the finished one was taken while a newer unfinished one waited, nothing overwrites it either
    const done4 = status(ref, 4, 'succeeded', { exitCode: 0, finishedAt: nowIso() })
    p.setMode('hold')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r4', record: done4 }])
    await waitFor(() => p.counts.held === 1, { what: 'the write to be in flight', ...LONG })
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r4', record: status(ref, 4, 'running') }])
    p.setMode(null) // the held write goes through
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r4'))).toEqual(strip(done4 as never))

    // a new version of the workload starts a fresh status under the same key: that one does replace a finished one
    p.setMode('500')
    const failedNow = outbox.stats.failedAttempts
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r6', record: status(ref, 0, 'stopped', { message: 'the workload record was updated', finishedAt: nowIso() }) }])
    await waitFor(() => outbox.stats.failedAttempts > failedNow, { what: 'a failed write', ...LONG })
    const fresh = status({ uri: ref.uri, cid: OTHER_CID }, 0, 'scheduled')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r6', record: fresh }])
    p.setMode(null)
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r6'))).toEqual(strip(fresh as never))
    await closeOutbox(outbox)
  }, 240_000)

  it('keeps retrying, however many attempts fail in a row', async () => {
    // each retry is a timer; one that fires before the outbox's retry moment (timers and
    // Date.now() tick apart by up to a millisecond) must not end the retries
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-')), 'meshlet.sqlite')
    const outbox = openOutbox(file, writer, { minBackoffMs: 4, maxBackoffMs: 4 })
    p.setMode('500')
    const rec = status(ref, 7, 'scheduled')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r7', record: rec }])
    await waitFor(() => outbox.stats.failedAttempts >= 150, { what: '150 failed attempts', ...LONG })
    expect(outbox.pending()[0].attempts).toBeGreaterThanOrEqual(150)
    p.setMode(null)
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r7'))).toEqual(strip(rec as never))
    await closeOutbox(outbox)
  }, 240_000)

  it('flushThrough writes what was queued up to a point before returning, and gives up at once while writes fail', async () => {
    // a heartbeat is sent only behind the answers queued before it (daemon/meshlet.ts)
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-')), 'meshlet.sqlite')
    const outbox = openOutbox(file, writer)
    p.setMode(null)
    const first = status(ref, 8, 'scheduled')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r8', record: first }])
    const upTo = outbox.lastSeq()
    expect(await outbox.flushThrough(upTo)).toBe(true)
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r8'))).toEqual(strip(first as never))
    p.setMode('500')
    outbox.enqueue([{ collection: COLLECTIONS.workloadStatus, rkey: 'r9', record: status(ref, 9, 'scheduled') }])
    expect(await outbox.flushThrough(outbox.lastSeq())).toBe(false)
    expect(outbox.pending().map(keyOf)).toEqual([`${COLLECTIONS.workloadStatus}/r9`])
    p.setMode(null)
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain', ...LONG })
    await closeOutbox(outbox)
  }, 240_000)

  it('waits for RateLimit-Reset after a 429, then writes', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-')), 'meshlet.sqlite')
    const retries: { status?: number; delayMs: number }[] = []
    // a tiny backoff: were the reset ignored, the outbox would retry many times before it
    const outbox = openOutbox(file, writer, { onRetry: (err, delayMs) => retries.push({ status: (err as { status?: number }).status, delayMs }) })
    const from = p.calls.length
    p.setMode('429', { resetInSeconds: 3 })
    const rec = status(ref, 5, 'scheduled')
    outbox.enqueue([
      { collection: COLLECTIONS.workloadStatus, rkey: 'r5', record: rec },
      { collection: COLLECTIONS.bid, rkey: Outbox.newKey(), record: bid(ref) },
    ])
    await waitFor(() => outbox.depth === 0, { what: 'the outbox to drain after the reset', ...LONG })
    const reset = p.rateLimitReset!
    expect(reset).toBeDefined()
    const calls = p.calls.slice(from)
    const before = calls.filter((c) => c.at < reset * 1000)
    const after = calls.filter((c) => c.at >= reset * 1000)
    // exactly one attempt before the reset (an attempt is one applyWrites call, perhaps
    // followed by the writer's putRecord fallback), refused; nothing else until the reset
    expect(before.length).toBeGreaterThanOrEqual(1)
    expect(before.filter((c) => c.method === 'com.atproto.repo.applyWrites')).toHaveLength(1)
    expect(before.every((c) => c.outcome === 'failed' && c.mode === '429')).toBe(true)
    expect(after.length).toBeGreaterThanOrEqual(1)
    expect(after.every((c) => c.outcome === 'forwarded' && c.status === 200)).toBe(true)
    expect(outbox.stats).toMatchObject({ failedAttempts: 1, written: 2, commits: 1, dropped: 0 })
    expect(retries).toHaveLength(1)
    expect(retries[0].status).toBe(429)
    expect(strip(await onPds(account.did, COLLECTIONS.workloadStatus, 'r5'))).toEqual(strip(rec as never))
    p.setMode(null)
    await closeOutbox(outbox)
  }, 240_000)
})

describe('a meshlet whose PDS fails writes still takes part in placement', () => {
  let members: Member[]
  let flaky: Member
  let p: FlakyProxy
  const running = new Map<string, Meshlet>()

  const start = async (m: Member, over: Parameters<typeof startMeshlet>[2] = {}) => {
    const d = await startMeshlet(net, m, over)
    daemons.push(d)
    running.set(m.name, d)
    return d
  }
  const stop = async (m: Member) => {
    const d = running.get(m.name)!
    running.delete(m.name)
    daemons.splice(daemons.indexOf(d), 1)
    await d.close()
  }
  const all = () => members.map((m) => running.get(m.name)!)
  const healthy = () => members.filter((m) => m !== flaky).map((m) => running.get(m.name)!)

  /** Every daemon's view of a workload, settled and identical. */
  async function agreed(uri: string) {
    return waitFor(
      () => {
        const v = all().map((d) => {
          const pl = place(d.ctx.state, uri, Date.now())
          return JSON.stringify(pl ? { phase: pl.phase, settled: pl.settled, selected: pl.selected, placed: pl.placed, candidates: pl.candidates.map((c) => c.did) } : null)
        })
        const first = JSON.parse(v[0])
        return first?.settled && v.every((x) => x === v[0]) ? first : undefined
      },
      { what: `agreement on ${uri}`, ...LONG },
    )
  }

  const queuedFor = (d: Meshlet, uri: string) => d.ctx.outbox.pending().filter((e) => (e.record as { workload?: { uri: string } }).workload?.uri === uri)
  const flakyDid = () => flaky.meshlet.did

  /** The flaky meshlet's bid and status for a workload, as another daemon saw them on the firehose. */
  function seenBy(d: Meshlet, uri: string) {
    const bids = [...d.ctx.state.bids.values()].filter((b) => b.did === flakyDid() && b.record.workload.uri === uri && !b.cid.startsWith('pending:'))
    const st = d.ctx.state.statuses.get(`at://${flakyDid()}/${COLLECTIONS.workloadStatus}/${statusRecordKey(uri, 0)}`)
    return { bids, status: st && !st.cid.startsWith('pending:') ? st.record : undefined }
  }

  async function expectPlacedWithFlaky(uri: string, replicas: number) {
    const view = await agreed(uri)
    expect(view).toMatchObject({ phase: 'placed', placed: replicas })
    const selected = view.selected.map((s: { meshlet: string; replicas: number }) => s.meshlet)
    expect(new Set(selected).size).toBe(replicas)
    expect(selected).toContain(flakyDid())
    for (const d of healthy()) {
      const seen = await waitFor(() => {
        const s = seenBy(d, uri)
        return s.bids.length > 0 && s.status ? s : undefined
      }, { what: `the flaky meshlet's records for ${uri} on ${d.did}`, ...LONG })
      expect(seen.bids.every((b) => !b.record.decline)).toBe(true)
      expect(seen.status!.state).toBe('scheduled')
    }
  }

  beforeAll(async () => {
    p = await proxy()
    members = await Promise.all(['fay', 'gus', 'hal'].map((n) => addMember(net, n)))
    flaky = members[0]
    await formCluster('outbox-commune', members)
    await start(flaky, { service: p.url })
    for (const m of members.slice(1)) await start(m)
    await waitFor(() => all().every((d) => members.every((m) => d.ctx.state.capacities.has(m.meshlet.did))), { what: 'capacities', ...LONG })
  }, 180_000)

  it('queues its bid and status while writes fail, and is placed once they pass', async () => {
    const [, gus, hal] = members
    const fay = running.get(flaky.name)!
    p.setMode('500')
    // every meshlet is needed for the first; only the flaky one may run the second
    const wide = await gus.owner.writer.create(COLLECTIONS.workload, workload({ name: 'wide', replicas: members.length }))
    const only = await hal.owner.writer.create(COLLECTIONS.workload, workload({ name: 'only-fay', constraints: { meshlets: [flakyDid()] } }))

    await waitFor(() => queuedFor(fay, wide.uri).length >= 2 && queuedFor(fay, only.uri).length >= 2, { what: 'the flaky meshlet to answer into its outbox', ...LONG })
    await waitFor(() => fay.ctx.outbox.stats.failedAttempts >= 2, { what: 'failed writes', ...LONG })
    // the healthy ones answered the wide workload, and see each other's answers
    await waitFor(
      () => healthy().every((d) => healthy().every((o) => [...d.ctx.state.bids.values()].some((b) => b.did === o.did && b.record.workload.uri === wide.uri))),
      { what: 'the healthy answers', ...LONG },
    )

    expect(fay.ctx.outbox.depth).toBeGreaterThan(0)
    expect(p.counts.failed).toBeGreaterThan(0)
    expect(await repoKeys(flakyDid())).toEqual([])
    for (const d of healthy()) {
      for (const uri of [wide.uri, only.uri]) {
        expect(seenBy(d, uri)).toEqual({ bids: [], status: undefined })
        // nobody can place it without the flaky meshlet's answer
        const pl = place(d.ctx.state, uri, Date.now())!
        expect(pl.phase).not.toBe('placed')
        expect(pl.selected.map((s) => s.meshlet)).not.toContain(flakyDid())
      }
    }

    p.setMode(null)
    await expectPlacedWithFlaky(wide.uri, members.length)
    await expectPlacedWithFlaky(only.uri, 1)
    await waitFor(() => fay.ctx.outbox.depth === 0, { what: 'the flaky outbox to drain', ...LONG })
  }, 300_000)

  it('keeps what it queued across a restart while writes still fail', async () => {
    const [, gus, hal] = members
    let fay = running.get(flaky.name)!
    const dataDir = fay.ctx.cfg.dataDir
    // its answers fail (connections dropped); its capacity heartbeat at start still passes
    p.setMode('reset', { collections: [COLLECTIONS.bid, COLLECTIONS.workloadStatus] })
    const wide = await hal.owner.writer.create(COLLECTIONS.workload, workload({ name: 'wide-2', replicas: members.length }))
    const only = await gus.owner.writer.create(COLLECTIONS.workload, workload({ name: 'only-fay-2', constraints: { meshlets: [flakyDid()] } }))
    await waitFor(() => queuedFor(fay, wide.uri).length >= 2 && queuedFor(fay, only.uri).length >= 2, { what: 'the flaky meshlet to answer into its outbox', ...LONG })
    const failed = p.counts.failed
    await waitFor(() => p.counts.failed > failed, { what: 'a failed write', ...LONG })
    const queued: OutboxEntry[] = [...queuedFor(fay, wide.uri), ...queuedFor(fay, only.uri)]
    const repoBefore = await repoKeys(flakyDid())
    for (const e of queued) expect(repoBefore).not.toContain(keyOf(e))

    await stop(flaky)
    const failedAtStop = p.counts.failed
    fay = await start(flaky, { service: p.url, dataDir })
    // nothing lost: the new daemon's outbox holds every queued write, and keeps trying
    const pendingKeys = fay.ctx.outbox.pending().map(keyOf)
    for (const e of queued) expect(pendingKeys).toContain(keyOf(e))
    await waitFor(() => p.counts.failed > failedAtStop, { what: 'the restarted daemon to retry', ...LONG })
    const repoDuring = await repoKeys(flakyDid())
    for (const e of queued) expect(repoDuring).not.toContain(keyOf(e))

    p.setMode(null)
    await waitFor(() => fay.ctx.outbox.depth === 0, { what: 'the restarted outbox to drain', ...LONG })
    const repoAfter = await repoKeys(flakyDid())
    for (const e of queued) expect(repoAfter).toContain(keyOf(e))
    // the bids it queued before the restart are on the PDS as they were queued
    for (const e of queued.filter((x) => x.collection === COLLECTIONS.bid)) {
      expect(strip(await onPds(flakyDid(), COLLECTIONS.bid, e.rkey))).toEqual(strip(e.record as never))
    }
    await expectPlacedWithFlaky(wide.uri, members.length)
    await expectPlacedWithFlaky(only.uri, 1)
  }, 300_000)
})
