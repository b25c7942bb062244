// Identity resolution when the directory does not answer for a while (a loaded machine, a
// busy PLC): the repo reader and the commit prover ask again instead of losing a follow,
// a daemon start or a record; an answer about the DID itself (not found) is final at once.
// The PLC and PDS are real; a proxy in front of the PLC fails the requests it is told to.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CommitEvt } from '@atproto/sync'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { IdResolver } from '@atproto/identity'
import { fetchRepo } from '../src/appview/backfill.js'
import { Indexer } from '../src/appview/indexer.js'
import { SqliteStore } from '../src/appview/sqlite-store.js'
import { createIdResolver } from '../src/identity/resolver.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { LocalDb } from '../src/db/index.js'
import { PublicState } from '../src/scheduler/state.js'
import { CommitProver } from '../src/sync/commit-proof.js'
import { Ingestor, type RecordChange } from '../src/sync/ingest.js'
import { silentLogger } from '../src/util/logger.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { watchCommits, type CommitWatch } from './helpers/commits.js'

/** Forwards to the PLC; the next `failing` requests get a 503, or a dropped connection. */
class FailingPlc {
  private failing = 0
  private how: '503' | 'reset' = '503'
  /** Requests that reached the proxy since the last `fail`. */
  requests = 0
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(upstream: string): Promise<FailingPlc> {
    let proxy: FailingPlc | undefined
    const server = http.createServer((req, res) => {
      const p = proxy!
      p.requests++
      if (p.failing > 0) {
        p.failing--
        if (p.how === 'reset') return req.socket.destroy()
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"busy"}')
        return
      }
      const up = http.request(new URL(req.url!, upstream), { method: req.method, headers: { ...req.headers, host: new URL(upstream).host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    proxy = new FailingPlc(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return proxy
  }

  /** Fails the next `n` requests this way, counting requests from now. */
  fail(n: number, how: '503' | 'reset' = '503'): void {
    this.failing = n
    this.how = how
    this.requests = 0
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }
}

const FAST = [20, 20, 20]
let net: DevNetwork
let plc: FailingPlc
let alice: DevAccount
let commits: CommitWatch

beforeAll(async () => {
  net = await startNetwork()
  plc = await FailingPlc.start(net.plcUrl)
  alice = await net.createAccount('alice')
  commits = watchCommits(net)
})
afterAll(async () => {
  await commits?.close()
  await plc?.close()
  await net?.close()
})

/** A resolver with an empty cache, reaching the PLC through the proxy. */
const throughProxy = () => createIdResolver({ plcUrl: plc.url, allowInsecureHttp: true })

const created = async (rkey: string): Promise<CommitEvt> => {
  const put = await alice.writer.put(COLLECTIONS.cluster, rkey, { $type: COLLECTIONS.cluster, members: [], createdAt: nowIso() })
  return commits.eventFor(put.uri, 'create')
}

describe('identity resolution through a directory that fails for a while (real PLC + PDS)', () => {
  it("the repo reader asks again: a PLC that answers 503, then drops a connection, still gives the DID's PDS", async () => {
    const reader = new RepoReader(throughProxy(), FAST)
    plc.fail(2, '503')
    expect(await reader.pdsFor(alice.did)).toBe(net.pdsUrl)
    expect(plc.requests).toBe(3)

    const again = new RepoReader(throughProxy(), FAST)
    plc.fail(3, 'reset')
    expect((await again.list(alice.did, COLLECTIONS.cluster)).invalid).toEqual([])
    expect(plc.requests).toBe(4)
  })

  it('gives up after its retries with the reason, and a DID the directory does not know is not asked about twice', async () => {
    plc.fail(100, '503')
    await expect(new RepoReader(throughProxy(), FAST).list(alice.did, COLLECTIONS.cluster)).rejects.toThrow(`cannot resolve ${alice.did} to a PDS: Service Unavailable`)
    expect(plc.requests).toBe(FAST.length + 1)

    plc.fail(0)
    const unknown = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    await expect(new RepoReader(throughProxy(), FAST).list(unknown, COLLECTIONS.cluster)).rejects.toThrow(`cannot resolve ${unknown} to a PDS`)
    expect(plc.requests).toBe(1)
  })

  it('the commit prover proves a genuine record although its first key lookups found no answer', async () => {
    const evt = await created('retried')
    const prover = new CommitProver(throughProxy(), { retryDelaysMs: FAST })
    plc.fail(2, 'reset')
    expect(await prover.proves(evt)).toBe(true)
    expect(plc.requests).toBe(3)
    expect(prover.keyUnavailable(alice.did)).toBeUndefined()
  })

  it('a repo whose key cannot be had is named as such, and is not asked about again for each of its records', async () => {
    const first = await created('unavailable-1')
    const second = await created('unavailable-2')
    const prover = new CommitProver(throughProxy(), { retryDelaysMs: FAST })
    plc.fail(100, '503')
    expect(await prover.proves(first)).toBe(false)
    expect(prover.keyUnavailable(alice.did)).toBe('Service Unavailable')
    const asked = plc.requests
    expect(asked).toBe(FAST.length + 1)
    expect(await prover.proves(second)).toBe(false)
    expect(plc.requests).toBe(asked)
    plc.fail(0)
  })

  it('the firehose: a record skipped while the directory gave no answer is read again, with its proof, once it answers', async () => {
    const carol = await net.createAccount('carol')
    const state = new PublicState()
    const db = new LocalDb(':memory:')
    const changes: RecordChange[] = []
    const ingestor = new Ingestor({ idResolver: throughProxy(), db, state, logger: silentLogger(), onChange: (c) => changes.push(c), resolveRetryDelaysMs: FAST, recheckDelayMs: 300 })
    try {
      plc.fail(1_000_000)
      ingestor.addSource(net.pdsUrl)
      const put = await carol.writer.put(COLLECTIONS.cluster, 'garden', { $type: COLLECTIONS.cluster, members: [alice.did], createdAt: nowIso() })
      await waitFor(() => ingestor.stats.unproven >= 1, { timeoutMs: 30_000, what: "carol's record to be skipped for want of her key" })
      expect(state.clusters.has(put.uri)).toBe(false)
      // still no answer: it waits, and is not given up
      await new Promise((r) => setTimeout(r, 1000))
      expect(state.clusters.has(put.uri)).toBe(false)

      plc.fail(0)
      await waitFor(() => state.clusters.has(put.uri), { timeoutMs: 30_000, what: "carol's record to be read again" })
      expect(state.clusters.get(put.uri)!.cid).toBe(put.cid)
      expect(state.clusters.get(put.uri)!.record.members).toEqual([alice.did])
      expect(changes.filter((c) => c.uri === put.uri).map((c) => c.action)).toEqual(['put'])
      // her next records are proven as they come
      const next = await carol.writer.put(COLLECTIONS.cluster, 'orchard', { $type: COLLECTIONS.cluster, members: [], createdAt: nowIso() })
      await waitFor(() => state.clusters.has(next.uri), { timeoutMs: 30_000, what: "carol's next record" })
      expect(ingestor.stats.unproven).toBe(1)
    } finally {
      plc.fail(0)
      await ingestor.close()
      db.close()
    }
  })

  it("the appview: a record skipped for want of its repo's key is indexed from the repo's next snapshot, once the directory answers", async () => {
    const dan = await net.createAccount('dan')
    // dan's cluster names alice, so the appview indexes her repo too
    await dan.writer.put(COLLECTIONS.cluster, 'first', { $type: COLLECTIONS.cluster, members: [alice.did], createdAt: nowIso() })
    const store = new SqliteStore(':memory:')
    // no cache: every key lookup and every snapshot reaches the directory through the proxy
    const idResolver = new IdResolver({ plcUrl: plc.url, fetch: globalThis.fetch })
    // no second look after connecting (connectGraceMs 0): that would find the skipped commit by its rev on its own
    const indexer = new Indexer({ store, idResolver, logger: silentLogger(), seeds: [dan.did], readRepo: (pds, repo) => fetchRepo(idResolver, pds, repo), connectGraceMs: 0 })
    try {
      await indexer.start()
      expect(indexer.repoStatus(dan.did)).toBe('ready')
      await waitFor(() => indexer.repoStatus(alice.did) === 'ready', { timeoutMs: 30_000, what: "alice's repo indexed" })
      // its subscription is live once a commit written now arrives (alice's: dan's key stays unlooked-up)
      const probe = await alice.writer.put(COLLECTIONS.cluster, 'probe', { $type: COLLECTIONS.cluster, members: [], createdAt: nowIso() })
      await waitFor(() => indexer.state.clusters.has(probe.uri), { timeoutMs: 30_000, what: 'the probe' })

      plc.fail(1_000_000)
      const put = await dan.writer.put(COLLECTIONS.cluster, 'garden', { $type: COLLECTIONS.cluster, members: [alice.did], createdAt: nowIso() })
      await waitFor(() => indexer.stats.backfillFailures >= 1, { timeoutMs: 60_000, what: "dan's repo read again, and failing while the directory does not answer" })
      expect(indexer.state.clusters.has(put.uri)).toBe(false)

      plc.fail(0)
      await waitFor(() => indexer.state.clusters.has(put.uri), { timeoutMs: 60_000, what: "dan's skipped record indexed" })
      expect(indexer.state.clusters.get(put.uri)!.cid).toBe(put.cid)
      expect((await store.allRecords()).some((r) => r.uri === put.uri)).toBe(true)
      await waitFor(() => indexer.repoStatus(dan.did) === 'ready', { timeoutMs: 30_000, what: "dan's repo ready again" })
    } finally {
      plc.fail(0)
      await indexer.close()
      await store.close()
    }
  })
})
