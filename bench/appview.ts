// npm run bench:appview — how fast the appview takes in a commune, and how soon a commit
// is queryable, beside the raw firehose hop measured in the same run.
//   backfill  a real PDS holds BENCH_RECORDS commune.scheduler.* records in BENCH_ACCOUNTS
//             repos; a fresh appview seeded with them reads every repo (verified getRepo),
//             validates, stores, summarises: records per second until its start resolves.
//   live      BENCH_LIVE workload records written one at a time while the appview runs and a
//             raw @atproto/sync Firehose (verified, handler only notes the time) listens:
//             from each commit (the event's own time) to the raw consumer receiving it, and
//             to commune.appview.getWorkload answering it over HTTP (polled every ms).
// Last stdout line: JSON.
process.env.LOG_ENABLED ??= 'false'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Firehose } from '@atproto/sync'
import { startAppview } from '../src/appview/service.js'
import { DevNetwork, type DevAccount } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import type { Write } from '../src/repo/writer.js'
import { silentLogger } from '../src/util/logger.js'
import { sleep } from '../src/util/time.js'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 5000)
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10)
const LIVE = Number(process.env.BENCH_LIVE ?? 200)
const BATCH = 100

const workload = (i: number): WorkloadRecord => ({
  $type: COLLECTIONS.workload,
  name: `bench-${i}`,
  image: 'busybox:latest',
  command: ['echo', String(i)],
  resources: { cpuMillis: 100 + (i % 10) * 100, memoryMiB: 64 },
  replicas: 1,
  createdAt: new Date().toISOString(),
})

async function fill(accounts: DevAccount[]): Promise<void> {
  const per = Math.ceil(RECORDS / accounts.length)
  let written = 0
  await Promise.all(
    accounts.map(async (a) => {
      for (let i = 0; i < per && written < RECORDS; i += BATCH) {
        const n = Math.min(BATCH, per - i, RECORDS - written)
        written += n
        const writes: Write[] = Array.from({ length: n }, (_, k) => ({ op: 'create', collection: COLLECTIONS.workload, record: workload(i + k) }))
        await a.writer.applyWrites(writes)
      }
    }),
  )
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN
}
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d

async function main(): Promise<void> {
  const net = await DevNetwork.start()
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-appview-'))
  const accounts: DevAccount[] = []
  for (let i = 0; i < ACCOUNTS; i++) accounts.push(await net.createAccount(`b${i}`))
  console.error(`filling ${ACCOUNTS} repos with ${RECORDS} records`)
  await fill(accounts)

  // backfill, twice from scratch; the faster counts
  const runs: { seconds: number; recordsPerSec: number }[] = []
  for (let k = 0; k < 2; k++) {
    const t0 = performance.now()
    const av = await startAppview({ dataDir: path.join(tmp, `backfill${k}`), port: 0, plcUrl: net.plcUrl, allowInsecureHttp: true, seeds: accounts.map((a) => a.did), logger: silentLogger() })
    const seconds = (performance.now() - t0) / 1000
    const indexed = av.indexer.stats.backfillRecords
    if (indexed !== RECORDS) throw new Error(`backfill indexed ${indexed} of ${RECORDS} records`)
    runs.push({ seconds: round(seconds, 2), recordsPerSec: Math.round(indexed / seconds) })
    console.error(`  backfill ${k + 1}: ${indexed} records in ${seconds.toFixed(2)} s`)
    await av.close()
  }
  const backfill = runs.reduce((a, b) => (b.recordsPerSec > a.recordsPerSec ? b : a))

  // live: the appview and a raw consumer on the same PDS
  const av = await startAppview({ dataDir: path.join(tmp, 'live'), port: 0, plcUrl: net.plcUrl, allowInsecureHttp: true, seeds: [accounts[0].did], logger: silentLogger() })
  const committed = new Map<string, number>()
  const rawSeen = new Map<string, number>()
  const hose = new Firehose({
    idResolver: net.idResolver,
    service: net.pdsUrl.replace(/^http/, 'ws'),
    filterCollections: ['commune.scheduler.*'],
    excludeIdentity: true,
    excludeAccount: true,
    excludeSync: true,
    handleEvent: async (evt) => {
      if (evt.event !== 'create') return
      const uri = evt.uri.toString()
      rawSeen.set(uri, Date.now())
      committed.set(uri, Date.parse(evt.time))
    },
    onError: (err) => process.env.BENCH_DEBUG && console.error('raw firehose:', err.message),
  })
  void hose.start()
  // both subscriptions are live once a probe commit reaches both
  for (let live = false; !live; ) {
    const probe = await accounts[0].writer.create(COLLECTIONS.workload, workload(0))
    const until = Date.now() + 2000
    while (!(live = committed.has(probe.uri) && av.ctx.state.workloads.has(probe.uri)) && Date.now() < until) await sleep(5)
  }
  const appviewLag: number[] = []
  const rawHop: number[] = []
  const writer = accounts[0].writer
  for (let i = 0; i < LIVE; i++) {
    const { uri } = await writer.create(COLLECTIONS.workload, workload(RECORDS + i))
    const url = `${av.url}/xrpc/commune.appview.getWorkload?uri=${encodeURIComponent(uri)}`
    let queryable: number | undefined
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.ok) {
        queryable = Date.now()
        break
      }
      await sleep(1)
    }
    if (queryable === undefined) throw new Error(`${uri} never became queryable`)
    const until = Date.now() + 30_000
    while (!committed.has(uri) && Date.now() < until) await sleep(1)
    const at = committed.get(uri)
    if (at === undefined) throw new Error(`the raw firehose never saw ${uri}`)
    appviewLag.push(queryable - at)
    rawHop.push(rawSeen.get(uri)! - at)
  }
  await hose.destroy()
  await av.close()
  await net.close()
  fs.rmSync(tmp, { recursive: true, force: true })
  const result = {
    bench: 'appview',
    records: RECORDS,
    repos: ACCOUNTS,
    backfill: { ...backfill, runs },
    live: {
      samples: LIVE,
      appviewQueryableMs: { p50: pct(appviewLag, 50), p99: pct(appviewLag, 99), max: Math.max(...appviewLag) },
      rawFirehoseHopMs: { p50: pct(rawHop, 50), p99: pct(rawHop, 99), max: Math.max(...rawHop) },
      overheadP50Ms: pct(appviewLag, 50) - pct(rawHop, 50),
      note: 'from the commit event time (ms resolution, same clock); appview = getWorkload over HTTP answers, polled every ~1 ms',
    },
  }
  console.log(JSON.stringify(result))
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
