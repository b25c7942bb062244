// npm run bench:placement — placement latency, throughput and write budget on the
// embedded network (real PLC, PDS, firehose), for clusters of 3 and 10 meshlets.
// Last stdout line: a JSON array, one object per cluster size.
process.env.LOG_ENABLED ??= 'false'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Meshlet } from '../src/daemon/meshlet.js'
import { DevNetwork, type DevAccount } from '../src/dev/network.js'
import { linkMeshlet } from '../src/identity/link.js'
import { LocalDb } from '../src/db/index.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { PublicState } from '../src/scheduler/state.js'
import { Ingestor } from '../src/sync/ingest.js'
import { silentLogger } from '../src/util/logger.js'
import { nowIso, sleep } from '../src/util/time.js'
import type { Placement } from '../src/scheduler/placement.js'

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 30)
const BURST = Number(process.env.BENCH_BURST ?? 40)
const HOPS = 20

interface Result {
  meshlets: number
  p50Ms: number
  p99Ms: number
  placementsPerSec: number
  writesPerPlacement: number
  floorHopMs: number
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}
const round1 = (x: number) => Math.round(x * 10) / 10

async function run(n: number): Promise<Result> {
  const net = await DevNetwork.start()
  const logger = silentLogger()
  const members: { owner: DevAccount; meshlet: DevAccount }[] = []
  for (let i = 0; i < n; i++) {
    const owner = await net.createAccount(`o${i}`)
    const meshlet = await net.createAccount(`m${i}`)
    await linkMeshlet(owner.writer, meshlet.writer)
    members.push({ owner, meshlet })
  }
  for (const m of members) {
    await m.meshlet.writer.put(COLLECTIONS.cluster, 'bench', {
      $type: COLLECTIONS.cluster,
      members: members.filter((x) => x !== m).map((x) => x.owner.did),
      createdAt: nowIso(),
    })
  }
  const daemons: Meshlet[] = []
  for (const m of members) {
    daemons.push(
      await Meshlet.start(
        {
          service: net.pdsUrl,
          identifier: m.meshlet.handle,
          password: m.meshlet.password,
          plcUrl: net.plcUrl,
          allowInsecureHttp: true,
          dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-')),
          driver: 'none',
          resources: { cpuMillis: 256000, memoryMiB: 1048576 },
          bidWindowMs: 3000,
        },
        { logger },
      ),
    )
  }
  while (!daemons.every((d) => d.ctx.state.capacities.size >= n)) await sleep(20)

  // The floor: one write → firehose hop, on a plain subscriber, measured in this run.
  const hopState = new PublicState()
  const seen = new Map<string, number>()
  const hopDb = new LocalDb(':memory:')
  const hop = new Ingestor({ idResolver: net.idResolver, db: hopDb, state: hopState, logger, onChange: (c) => seen.set(c.uri, performance.now()) })
  hop.addSource(net.pdsUrl)
  await sleep(300)
  const hops: number[] = []
  const prober = members[0].owner
  for (let i = 0; i < HOPS; i++) {
    const t0 = performance.now()
    const res = await prober.writer.put(COLLECTIONS.cluster, `probe${i}`, { $type: COLLECTIONS.cluster, members: [], createdAt: nowIso() })
    while (!seen.has(res.uri)) await sleep(1)
    hops.push(seen.get(res.uri)! - t0)
  }
  await hop.close()
  hopDb.close()

  // Agreement: every meshlet has evaluated the workload to closed with the same selection.
  const finalAt = new Map<string, Map<string, { sel: string; at: number }>>()
  daemons.forEach((d) => {
    d.ctx.engine.listeners.add((p: Placement) => {
      if (!p.closed) return
      const byDaemon = finalAt.get(p.workload.uri) ?? new Map()
      const sel = JSON.stringify(p.selected)
      if (byDaemon.get(d.did)?.sel !== sel) byDaemon.set(d.did, { sel, at: performance.now() })
      finalAt.set(p.workload.uri, byDaemon)
    })
  })
  const agreedAt = (uri: string): number | undefined => {
    const m = finalAt.get(uri)
    if (!m || m.size < n) return undefined
    const sels = new Set([...m.values()].map((v) => v.sel))
    if (sels.size !== 1 || [...sels][0] === '[]') return undefined
    return Math.max(...[...m.values()].map((v) => v.at))
  }
  const spec = (): WorkloadRecord => ({
    $type: COLLECTIONS.workload,
    image: 'meshlet-test/busybox:latest',
    command: ['true'],
    resources: { cpuMillis: 100, memoryMiB: 64 },
    replicas: 1,
    bidWindowMs: 3000,
    createdAt: nowIso(),
  })
  const commitsBefore = daemons.reduce((s, d) => s + d.ctx.writer.commits, 0)

  const latencies: number[] = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    const owner = members[i % n].owner
    const t0 = performance.now()
    const res = await owner.writer.create(COLLECTIONS.workload, spec())
    const committed = performance.now()
    let at: number | undefined
    const deadline = committed + 15_000
    while (!(at = agreedAt(res.uri)) && performance.now() < deadline) await sleep(2)
    latencies.push((at ?? deadline) - (t0 + (committed - t0) / 2))
  }

  const t0 = performance.now()
  const burst = await Promise.all(
    Array.from({ length: BURST }, (_, i) => members[i % n].owner.writer.create(COLLECTIONS.workload, spec())),
  )
  const deadline = performance.now() + 60_000
  while (burst.some((r) => !agreedAt(r.uri)) && performance.now() < deadline) await sleep(5)
  const burstMs = Math.max(...burst.map((r) => agreedAt(r.uri) ?? deadline)) - t0
  await Promise.all(daemons.map((d) => d.ctx.engine.idle()))
  await sleep(200)
  const meshletCommits = daemons.reduce((s, d) => s + d.ctx.writer.commits, 0) - commitsBefore
  const placements = SEQUENTIAL + BURST

  await Promise.all(daemons.map((d) => d.close()))
  await net.close()
  return {
    meshlets: n,
    p50Ms: round1(quantile(latencies, 0.5)),
    p99Ms: round1(quantile(latencies, 0.99)),
    placementsPerSec: round1((BURST * 1000) / burstMs),
    // the owner's workload write plus every meshlet commit (bids and statuses)
    writesPerPlacement: round1(1 + meshletCommits / placements),
    floorHopMs: round1(quantile(hops, 0.5)),
  }
}

const results: Result[] = []
for (const n of [3, 10]) {
  const r = await run(n)
  console.error(`meshlets=${n}: p50 ${r.p50Ms} ms (floor hop ${r.floorHopMs} ms, ${round1(r.p50Ms / (2 * r.floorHopMs))}x two hops), ${r.placementsPerSec}/s, ${r.writesPerPlacement} writes/placement`)
  results.push(r)
}
console.log(JSON.stringify(results))
process.exit(0)
