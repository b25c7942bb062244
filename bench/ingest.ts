// npm run bench:ingest — firehose ingestion speed and memory, against a raw consumer on the
// same stream in the same run. A real PDS is filled with a backlog of commune.scheduler.*
// commits (heartbeats and status updates of a bounded set of records, as a commune writes
// them); then, from cursor 0:
//   raw      @atproto/sync's Firehose, commits verified, the handler only counts;
//   meshlet  meshlet's Ingestor: the same verification, plus lexicon validation, the
//            SQLite write of record and cursor, and the in-memory state.
// Each runs twice, alternating, and the faster of its runs counts. Memory is sampled while
// the backlog drains: the consumer handles one event at a time, so the heap follows the
// records it keeps, not the backlog. Finally a meshlet consumer is stopped half way and a
// new one resumes from the persisted cursor: it must end with every record, none twice.
// Last stdout line: JSON.
process.env.LOG_ENABLED ??= 'false'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Firehose } from '@atproto/sync'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { DevNetwork, type DevAccount } from '../src/dev/network.js'
import { LocalDb } from '../src/db/index.js'
import { COLLECTIONS, type CapacityRecord, type WorkloadStatusRecord } from '../src/records/index.js'
import { PublicState } from '../src/scheduler/state.js'
import { Ingestor } from '../src/sync/ingest.js'
import { silentLogger } from '../src/util/logger.js'
import { sleep } from '../src/util/time.js'

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000)
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 20)
/** Status records per account, updated over and over: what the consumer keeps is bounded. */
const KEYS = 10

const cidOf = (s: string) => CID.create(1, 0x71, Digest.create(0x12, createHash('sha256').update(s).digest())).toString()

function heartbeat(i: number): CapacityRecord {
  const total = { cpuMillis: 4000, memoryMiB: 8192 }
  return { $type: COLLECTIONS.capacity, total, allocatable: { ...total, cpuMillis: 4000 - (i % 40) * 100 }, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: 300, updatedAt: new Date().toISOString() }
}
function status(owner: string, i: number): WorkloadStatusRecord {
  const uri = `at://${owner}/${COLLECTIONS.workload}/3kbench${String(i % KEYS).padStart(6, '0')}`
  const now = new Date().toISOString()
  return { $type: COLLECTIONS.workloadStatus, workload: { uri, cid: cidOf(uri) }, replica: 0, round: 0, state: i % 2 ? 'running' : 'scheduled', updatedAt: now }
}

async function fill(accounts: DevAccount[]): Promise<void> {
  const per = Math.ceil(EVENTS / accounts.length)
  let done = 0
  const t0 = Date.now()
  await Promise.all(
    accounts.map(async (a) => {
      for (let i = 0; i < per && done < EVENTS; i++) {
        done++
        if (i % 5 === 0) await a.writer.put(COLLECTIONS.capacity, 'self', heartbeat(i))
        else await a.writer.put(COLLECTIONS.workloadStatus, `s${i % KEYS}`, status(a.did, i))
        if (done % 5000 === 0) console.error(`  wrote ${done} commits (${Math.round(done / ((Date.now() - t0) / 1000))}/s)`)
      }
    }),
  )
}

interface Run {
  events: number
  seconds: number
  eventsPerSec: number
  peakHeapMiB: number
  peakRssMiB: number
}

/** Samples memory until `done` resolves. */
async function measured(events: () => number, start: () => void, done: () => boolean): Promise<Run> {
  global.gc?.()
  const base = process.memoryUsage()
  let peakHeap = 0
  let peakRss = 0
  const t0 = performance.now()
  start()
  while (!done()) {
    const m = process.memoryUsage()
    peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed)
    peakRss = Math.max(peakRss, m.rss - base.rss)
    await sleep(20)
    if (process.env.BENCH_DEBUG && Math.random() < 0.02) console.error(`  … ${events()} events`)
  }
  const seconds = (performance.now() - t0) / 1000
  const n = events()
  return { events: n, seconds: round(seconds, 2), eventsPerSec: Math.round(n / seconds), peakHeapMiB: round(peakHeap / 2 ** 20, 1), peakRssMiB: round(peakRss / 2 ** 20, 1) }
}
const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d

async function raw(net: DevNetwork, lastSeq: number): Promise<Run> {
  let events = 0
  let seq = 0
  const hose = new Firehose({
    idResolver: net.idResolver,
    service: net.pdsUrl.replace(/^http/, 'ws'),
    filterCollections: ['commune.scheduler.*'],
    excludeIdentity: true,
    excludeAccount: true,
    excludeSync: true,
    getCursor: () => 0,
    handleEvent: async (evt) => {
      events++
      seq = Math.max(seq, 'seq' in evt ? evt.seq : 0)
    },
    onError: (err) => process.env.BENCH_DEBUG && console.error('raw firehose:', err.message),
  })
  const run = await measured(() => events, () => void hose.start(), () => seq >= lastSeq)
  await hose.destroy()
  return run
}

async function ingestor(net: DevNetwork, lastSeq: number, dir: string, stopAt?: number): Promise<{ run: Run; db: LocalDb; state: PublicState; ing: Ingestor }> {
  const db = new LocalDb(path.join(dir, 'meshlet.sqlite'))
  const url = net.pdsUrl.replace(/^http/, 'ws').replace(/\/$/, '')
  const state = new PublicState()
  let stopped = false
  const ing: Ingestor = new Ingestor({
    idResolver: net.idResolver,
    db,
    state,
    logger: silentLogger(),
    // stop mid-stream, as a PDS disconnecting a slow consumer would
    onChange: () => {
      if (stopAt !== undefined && !stopped && (db.getCursor(url) ?? 0) >= stopAt) {
        stopped = true
        void ing.close()
      }
    },
  })
  ing.restore()
  const target = stopAt ?? lastSeq
  // a fresh meshlet tails the live stream (it bootstraps from getRepo); the bench replays the backlog
  if (db.getCursor(url) === undefined) db.setCursor(url, 0)
  const run = await measured(() => ing.stats.events, () => ing.addSource(net.pdsUrl), () => stopped || (db.getCursor(url) ?? 0) >= target)
  return { run, db, state, ing }
}

async function main(): Promise<void> {
  const net = await DevNetwork.start()
  const accounts: DevAccount[] = []
  for (let i = 0; i < ACCOUNTS; i++) accounts.push(await net.createAccount(`i${i}`))
  console.error(`filling the PDS with ${EVENTS} commits from ${ACCOUNTS} accounts`)
  await fill(accounts)
  const lastSeq = (await net.network.pds.ctx.sequencer.curr()) ?? 0
  console.error(`backlog: up to seq ${lastSeq}`)

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-ingest-'))
  const raws: Run[] = []
  const ours: Run[] = []
  let records = 0
  for (let k = 0; k < 2; k++) {
    raws.push(await raw(net, lastSeq))
    const dir = path.join(tmp, `run${k}`)
    fs.mkdirSync(dir)
    const o = await ingestor(net, lastSeq, dir)
    ours.push(o.run)
    records = o.state.statuses.size + o.state.capacities.size
    await o.ing.close()
    o.db.close()
    console.error(`  round ${k + 1}: raw ${raws[k].eventsPerSec}/s, meshlet ${ours[k].eventsPerSec}/s`)
  }

  // a consumer stopped half way resumes from its cursor: every record, none lost
  const dir = path.join(tmp, 'resume')
  fs.mkdirSync(dir)
  const first = await ingestor(net, lastSeq, dir, Math.floor(lastSeq / 2))
  await first.ing.close()
  first.db.close()
  const second = await ingestor(net, lastSeq, dir)
  const resumed = {
    firstEvents: first.run.events,
    secondEvents: second.run.events,
    records: second.state.statuses.size + second.state.capacities.size,
    complete: second.state.statuses.size + second.state.capacities.size === records,
    /** events handled twice across the stop (replayed from the cursor): at most those in flight */
    replayed: first.run.events + second.run.events - ours[0].events,
  }
  await second.ing.close()
  second.db.close()

  const best = (rs: Run[]) => rs.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a))
  const r = best(raws)
  const m = best(ours)
  const result = {
    bench: 'ingest',
    backlogEvents: lastSeq,
    recordsKept: records,
    raw: r,
    meshlet: m,
    ratio: round(m.eventsPerSec / r.eventsPerSec, 2),
    goal: 0.8,
    resumed,
  }
  await net.close()
  fs.rmSync(tmp, { recursive: true, force: true })
  console.log(JSON.stringify(result))
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
