// npm run bench:e2e — from a workload record's write to its container running, on the
// embedded commune (3 meshlets, docker driver) beside Docker Swarm on the same engine, in
// the same run, interleaved. Both are timed from just before the request leaves this
// process (the owner's createRecord, the createService call) to the engine's own `start`
// event for the container, so neither system's bookkeeping is on the clock.
// Meshlet's time is broken into stages observed from outside src/ (the firehose, the
// Docker engine, and hooks on the daemons' instances). Human summary on stderr; last
// stdout line: one JSON object.
process.env.LOG_ENABLED ??= 'false'
import Docker from 'dockerode'
import { AtUri } from '@atproto/syntax'
import { LABEL_MESHLET, LABEL_WORKLOAD } from '../src/executor/docker.js'
import type { ReplicaSpec, Tier } from '../src/executor/types.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { startCommune, type Commune } from './lib/commune.js'
import { ContainerEvents, type ContainerEvent } from './lib/docker-events.js'
import { DaemonProbe, FirehoseProbe } from './lib/e2e-probes.js'
import { median, quantile, ratio, round1, wallMs } from './lib/stats.js'
import { joinSwarm, LABEL_SWARM_SERVICE_ID, swarmProfile, type SwarmSession } from './lib/swarm.js'
import { requireDockerAndImage } from './lib/preflight.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 15)
const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
// b by default: a bridge network, like the swarm task (a swarm service cannot have none)
const TIER = (process.env.BENCH_TIER ?? 'b') as Tier
const COMMAND = ['sleep', '300']
const RESOURCES = { cpuMillis: 100, memoryMiB: 32 }
const BENCH = 'e2e'
const EVENT_TIMEOUT_MS = 60_000

if (!Number.isInteger(RUNS) || RUNS < 1) fail(`BENCH_RUNS must be a whole number ≥ 1, not ${process.env.BENCH_RUNS}`)
if (!['a', 'b', 'c'].includes(TIER)) fail(`BENCH_TIER must be a, b or c, not ${TIER}`)

/** Stages of one meshlet run, in ms after the request left (undefined where not observed). */
interface MeshletRun {
  writeAck: number
  workloadOnFirehose?: number
  workloadSeen?: number
  bidQueued?: number
  bidAcked?: number
  decided?: number
  driverCalled?: number
  containerCreated: number
  containerStarted: number
  driverReturned?: number
  bidOnFirehose?: number
  runningStatusOnFirehose?: number
  /** Containers made for this workload beyond the one replica (the goal is 0). */
  extraContainers: number
}

interface SwarmRun {
  createAck: number
  containerCreated: number
  containerStarted: number
}

const docker = new Docker()
let events: ContainerEvents | undefined
let swarm: SwarmSession | undefined
let commune: Commune | undefined
let firehose: FirehoseProbe | undefined
const offsets: number[] = []

let cleaning: Promise<void> | undefined
const cleanup = () =>
  (cleaning ??= (async () => {
    await firehose?.close().catch(() => undefined)
    await commune?.close().catch((err: Error) => console.error(`cleanup: ${err.message}`))
    await swarm?.close().catch((err: Error) => console.error(`cleanup: could not leave the swarm: ${err.message}`))
    events?.close()
  })())
let interrupted = false
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true
    void cleanup().finally(() => process.exit(130))
  })
}

async function meshletRun(i: number): Promise<MeshletRun> {
  const c = commune!
  const member = c.members[((i % c.members.length) + c.members.length) % c.members.length]
  const record: WorkloadRecord = {
    $type: COLLECTIONS.workload,
    name: `bench-e2e-${i}`,
    image: IMAGE,
    command: COMMAND,
    resources: RESOURCES,
    replicas: 1,
    tier: TIER,
    createdAt: nowIso(),
  }
  const t0 = wallMs()
  const { uri } = await member.owner.writer.create(COLLECTIONS.workload, record)
  const acked = wallMs()
  const ours = (a: Record<string, string>) => a[LABEL_WORKLOAD] === uri
  const started = await events!.next('start', ours, EVENT_TIMEOUT_MS, `workload ${uri}`)
  const created = events!.find('create', ours)
  const winner = c.members.find((m) => m.daemon.did === started.attributes[LABEL_MESHLET])
  const probe = winner ? probes.get(winner.daemon.did) : undefined
  // the meshlet's own word that it runs: one more write and hop, reported beside
  const running = await waitFor(() => firehose!.runningSeen.get(uri), { timeoutMs: 30_000, intervalMs: 5, what: 'the running status' }).catch(() => undefined)
  noteOffset(started)
  const rel = (t: number | undefined) => (t === undefined ? undefined : t - t0)

  // stop it (deleting the record stops it everywhere) and let the commune go quiet
  await member.owner.writer.delete(COLLECTIONS.workload, new AtUri(uri).rkey)
  await waitFor(async () => (await docker.listContainers({ all: true, filters: { label: [`${LABEL_WORKLOAD}=${uri}`] } })).length === 0, {
    timeoutMs: 60_000,
    intervalMs: 100,
    what: `the containers of ${uri} to be removed`,
  })
  await Promise.all(c.members.map((m) => m.daemon.ctx.engine.idle()))
  const containers = new Set([started.id, ...events!.all('create', ours).map((e) => e.id)])
  return {
    writeAck: acked - t0,
    workloadOnFirehose: rel(firehose!.workloadSeen.get(uri)),
    workloadSeen: rel(probe?.seen.get(uri)),
    bidQueued: rel(probe?.bidQueued.get(uri)),
    bidAcked: rel(probe?.bidAcked.get(uri)),
    decided: rel(probe?.decided.get(uri)),
    driverCalled: rel(probe?.driverCalled.get(uri)),
    containerCreated: (created?.at ?? started.at) - t0,
    containerStarted: started.at - t0,
    driverReturned: rel(probe?.driverReturned.get(uri)),
    bidOnFirehose: rel(firehose!.bidSeen.get(uri)),
    runningStatusOnFirehose: rel(running),
    extraContainers: containers.size - 1,
  }
}

async function swarmRun(i: number, replica: ReplicaSpec): Promise<SwarmRun> {
  const name = `meshlet-bench-e2e-${Date.now().toString(36)}-${i < 0 ? 'warm' : i}`
  const { spec } = swarmProfile(replica, name, BENCH)
  const t0 = wallMs()
  const service = await docker.createService(spec)
  const acked = wallMs()
  const ours = (a: Record<string, string>) => a[LABEL_SWARM_SERVICE_ID] === service.id
  // a task swarm rejects never starts: say why at once instead of waiting out the timeout
  let watching = true
  const rejected = (async () => {
    while (watching) {
      const tasks = (await docker.listTasks({ filters: { service: [service.id] } })) as { Status?: { State?: string; Err?: string } }[]
      const bad = tasks.find((t) => ['failed', 'rejected'].includes(t.Status?.State ?? ''))
      if (bad) throw new Error(`swarm task ${bad.Status?.State}: ${bad.Status?.Err ?? 'no reason given'}`)
      await new Promise((r) => setTimeout(r, 250))
    }
    return undefined as never
  })()
  let started: ContainerEvent
  try {
    started = await Promise.race([events!.next('start', ours, EVENT_TIMEOUT_MS, `service ${name}`), rejected])
  } finally {
    watching = false
  }
  const created = events!.find('create', ours)
  noteOffset(started)
  await docker.getService(service.id).remove()
  await waitFor(async () => (await docker.listContainers({ all: true, filters: { label: [`${LABEL_SWARM_SERVICE_ID}=${service.id}`] } })).length === 0, {
    timeoutMs: 60_000,
    intervalMs: 100,
    what: `the container of service ${name} to be removed`,
  })
  return { createAck: acked - t0, containerCreated: (created?.at ?? started.at) - t0, containerStarted: started.at - t0 }
}

/** How much later this process heard of an event than the engine stamped it: the clocks must agree for the event times to count. */
function noteOffset(e: ContainerEvent): void {
  offsets.push(e.received - e.at)
}

const probes = new Map<string, DaemonProbe>()

function fail(message: string): never {
  console.error(`bench:e2e: ${message}`)
  process.exit(1)
}

try {
  await requireDockerAndImage(docker, IMAGE, fail)
  events = await ContainerEvents.open(docker)
  swarm = await joinSwarm(docker, BENCH)
  commune = await startCommune({ size: 3, driver: 'docker', resources: { cpuMillis: 4000, memoryMiB: 4096 }, tmpPrefix: 'meshlet-bench-e2e-' })
  for (const m of commune.members) probes.set(m.daemon.did, new DaemonProbe(m))
  firehose = new FirehoseProbe(commune)
  const swarmReplica: ReplicaSpec = { workloadUri: 'swarm', replica: 0, meshletDid: 'swarm', image: IMAGE, command: COMMAND, ...RESOURCES, tier: TIER }
  const differences = swarmProfile(swarmReplica, 'probe', BENCH).differences

  const meshletRuns: MeshletRun[] = []
  const swarmRuns: SwarmRun[] = []
  // one warm-up each (i = -1), discarded; then meshlet, swarm, meshlet, swarm …
  for (let i = -1; i < RUNS; i++) {
    const m = await meshletRun(i)
    const s = await swarmRun(i, swarmReplica)
    if (i < 0) continue
    meshletRuns.push(m)
    swarmRuns.push(s)
    console.error(`run ${i + 1}/${RUNS}: meshlet ${round1(m.containerStarted)} ms, swarm ${round1(s.containerStarted)} ms`)
  }

  const p50 = <T>(runs: T[], key: keyof T) => {
    const xs = runs.map((r) => r[key]).filter((x): x is T[keyof T] & number => typeof x === 'number')
    return xs.length ? round1(median(xs)) : null
  }
  const p90 = <T>(runs: T[], key: keyof T) => round1(quantile(runs.map((r) => r[key] as number), 0.9))
  const meshletStages = {
    writeAck: p50(meshletRuns, 'writeAck'),
    workloadOnFirehose: p50(meshletRuns, 'workloadOnFirehose'),
    workloadSeen: p50(meshletRuns, 'workloadSeen'),
    bidQueued: p50(meshletRuns, 'bidQueued'),
    bidAcked: p50(meshletRuns, 'bidAcked'),
    decided: p50(meshletRuns, 'decided'),
    driverCalled: p50(meshletRuns, 'driverCalled'),
    containerCreated: p50(meshletRuns, 'containerCreated'),
    containerStarted: p50(meshletRuns, 'containerStarted'),
    driverReturned: p50(meshletRuns, 'driverReturned'),
    bidOnFirehose: p50(meshletRuns, 'bidOnFirehose'),
    runningStatusOnFirehose: p50(meshletRuns, 'runningStatusOnFirehose'),
  }
  const swarmStages = {
    createAck: p50(swarmRuns, 'createAck'),
    containerCreated: p50(swarmRuns, 'containerCreated'),
    containerStarted: p50(swarmRuns, 'containerStarted'),
  }
  const result = {
    runs: RUNS,
    image: IMAGE,
    tier: TIER,
    meshlet: {
      p50Ms: p50(meshletRuns, 'containerStarted')!,
      p90Ms: p90(meshletRuns, 'containerStarted'),
      runningStatusP50Ms: meshletStages.runningStatusOnFirehose,
    },
    swarm: { p50Ms: p50(swarmRuns, 'containerStarted')!, p90Ms: p90(swarmRuns, 'containerStarted') },
    ratioP50: ratio(median(meshletRuns.map((r) => r.containerStarted)), median(swarmRuns.map((r) => r.containerStarted))),
    ratioP90: ratio(quantile(meshletRuns.map((r) => r.containerStarted), 0.9), quantile(swarmRuns.map((r) => r.containerStarted), 0.9)),
    meshletStagesP50Ms: meshletStages,
    swarmStagesP50Ms: swarmStages,
    extraContainers: meshletRuns.reduce((n, r) => n + r.extraContainers, 0),
    eventDeliveryP50Ms: round1(median(offsets)),
    swarmInitialized: swarm.initialized,
    swarmProfileDifferences: differences,
  }
  const s = meshletStages
  console.error(
    [
      `write → running (engine start event), ${RUNS} runs each, tier ${TIER}:`,
      `  meshlet p50 ${result.meshlet.p50Ms} ms, p90 ${result.meshlet.p90Ms} ms (running status on the firehose: p50 ${result.meshlet.runningStatusP50Ms} ms)`,
      `  swarm   p50 ${result.swarm.p50Ms} ms, p90 ${result.swarm.p90Ms} ms`,
      `  ratio meshlet/swarm: p50 ×${result.ratioP50}, p90 ×${result.ratioP90}`,
      `meshlet stages (p50, ms after the write left): ack ${s.writeAck} · on the firehose ${s.workloadOnFirehose} · winner saw it ${s.workloadSeen} · bid queued ${s.bidQueued} · bid written ${s.bidAcked} · confirmed ${s.decided} · driver called ${s.driverCalled} · container created ${s.containerCreated} · started ${s.containerStarted} · driver returned ${s.driverReturned} · bid on firehose ${s.bidOnFirehose} · running status on firehose ${s.runningStatusOnFirehose}`,
      `swarm stages (p50): ack ${swarmStages.createAck} · created ${swarmStages.containerCreated} · started ${swarmStages.containerStarted}`,
      `extra containers: ${result.extraContainers}; engine events reached us ${result.eventDeliveryP50Ms} ms after their stamp (p50)`,
      ...(differences.length ? [`swarm's container differs from the driver's: ${differences.join('; ')}`] : []),
    ].join('\n'),
  )
  await cleanup()
  console.log(JSON.stringify(result))
  process.exit(0)
} catch (err) {
  // interrupted: the run failed because its commune was closed under it; the handler exits
  if (!interrupted) {
    console.error(`bench:e2e: ${(err as Error).message}`)
    await cleanup()
    process.exit(1)
  }
}
