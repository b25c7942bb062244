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
  /** Burst workloads every meshlet agreed on (placed, same selection), of those submitted. */
  burstAgreed: number
  burst: number
  /** Repo records per placement (the owner's workload, then every meshlet bid and status), sequential and in the burst. */
  writesPerPlacement: number
  burstWritesPerPlacement: number
  /** Commits per placement, the same way (a bid and its status share one commit). */
  commitsPerPlacement: number
  /** Workloads for which more meshlets than replicas ever considered themselves confirmed: the goal is 0. */
  overlaps: number
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
          diskFloorMiB: 0,
          resources: { cpuMillis: 256000, memoryMiB: 1048576 },
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

  // Agreement: every meshlet has evaluated the workload to placed with the same selection.
  // Overlaps: a meshlet that, in its own view, was confirmed for a workload it did not end with.
  const finalAt = new Map<string, Map<string, { sel: string; at: number }>>()
  const confirmedSelf = new Map<string, Set<string>>()
  daemons.forEach((d) => {
    d.ctx.engine.listeners.add((p: Placement) => {
      if (p.confirmed.includes(d.did)) confirmedSelf.set(p.workload.uri, (confirmedSelf.get(p.workload.uri) ?? new Set()).add(d.did))
      if (p.phase !== 'placed') return
      const byDaemon = finalAt.get(p.workload.uri) ?? new Map()
      const sel = JSON.stringify(p.selected.map((s) => [s.meshlet, s.replicas + s.finished]))
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
    createdAt: nowIso(),
  })
  const opsNow = () => daemons.reduce((s, d) => s + d.ctx.writer.ops, 0)
  const commitsNow = () => daemons.reduce((s, d) => s + d.ctx.writer.commits, 0)
  const commitsBefore = commitsNow()
  const opsBefore = opsNow()

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

  await Promise.all(daemons.map((d) => d.ctx.engine.idle()))
  const opsAfterSequential = opsNow()
  const t0 = performance.now()
  const burst = await Promise.all(
    Array.from({ length: BURST }, (_, i) => members[i % n].owner.writer.create(COLLECTIONS.workload, spec())),
  )
  const deadline = performance.now() + 60_000
  while (burst.some((r) => !agreedAt(r.uri)) && performance.now() < deadline) await sleep(5)
  const burstMs = Math.max(...burst.map((r) => agreedAt(r.uri) ?? deadline)) - t0
  await Promise.all(daemons.map((d) => d.ctx.engine.idle()))
  await sleep(200)
  const meshletCommits = commitsNow() - commitsBefore
  const placements = SEQUENTIAL + BURST
  const burstAgreed = burst.filter((r) => agreedAt(r.uri) !== undefined).length
  const overlaps = [...confirmedSelf.values()].filter((s) => s.size > 1).length

  await Promise.all(daemons.map((d) => d.close()))
  await net.close()
  return {
    meshlets: n,
    p50Ms: round1(quantile(latencies, 0.5)),
    p99Ms: round1(quantile(latencies, 0.99)),
    placementsPerSec: round1((burstAgreed * 1000) / burstMs),
    burstAgreed,
    burst: BURST,
    // the owner's workload record plus every meshlet record (bids and statuses); bound: 1 + 2 x replicas
    writesPerPlacement: round1(1 + (opsAfterSequential - opsBefore) / SEQUENTIAL),
    burstWritesPerPlacement: round1(1 + (opsNow() - opsAfterSequential) / BURST),
    commitsPerPlacement: round1(1 + meshletCommits / placements),
    overlaps,
    floorHopMs: round1(quantile(hops, 0.5)),
  }
}

const results: Result[] = []
for (const n of (process.env.BENCH_SIZES ?? "3,10").split(",").map(Number)) {
  const r = await run(n)
  console.error(
    `meshlets=${n}: p50 ${r.p50Ms} ms (floor hop ${r.floorHopMs} ms, ${round1(r.p50Ms / (2 * r.floorHopMs))}x two hops), burst ${r.burstAgreed}/${r.burst} agreed at ${r.placementsPerSec}/s, ` +
      `${r.writesPerPlacement} records/placement (burst ${r.burstWritesPerPlacement}), ${r.commitsPerPlacement} commits/placement, ${r.overlaps} overlaps`,
  )
  results.push(r)
}
console.log(JSON.stringify(results))
process.exit(0)
