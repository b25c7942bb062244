// npm run bench:executor — from the placement decision (the engine's call into the docker
// driver) to a running container, beside the same container made through the Docker API
// from this same process (createContainer with the driver's own tier-a config, then
// start), interleaved in one run; and the daemon's memory overhead per running replica.
// Both are timed from the call to the moment the API says the container started, and
// also to the engine's own `start` event. Last stdout line: one JSON object.
import Docker from 'dockerode'
import { containerConfig, DockerDriver, LABEL_MESHLET, LABEL_WORKLOAD } from '../src/executor/docker.js'
import type { ReplicaSpec } from '../src/executor/types.js'
import { ContainerEvents } from './lib/docker-events.js'
import { median, quantile, ratio, round1, wallMs } from './lib/stats.js'
import { requireDockerAndImage } from './lib/preflight.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const RUNS = Number(process.env.BENCH_RUNS ?? 10)
const RSS_REPLICAS = Number(process.env.BENCH_RSS_REPLICAS ?? 20)
const MESHLET = 'did:plc:benchexecutor'
const docker = new Docker()

if (!Number.isInteger(RUNS) || RUNS < 1) fail(`BENCH_RUNS must be a whole number ≥ 1, not ${process.env.BENCH_RUNS}`)
if (!Number.isInteger(RSS_REPLICAS) || RSS_REPLICAS < 1) fail(`BENCH_RSS_REPLICAS must be a whole number ≥ 1, not ${process.env.BENCH_RSS_REPLICAS}`)

const stamp = Date.now().toString(36)
const spec = (i: number | string): ReplicaSpec => ({
  workloadUri: `at://did:plc:benchowner/commune.scheduler.workload/b${stamp}${i}`,
  replica: 0,
  meshletDid: MESHLET,
  image: IMAGE,
  command: ['sleep', '300'],
  cpuMillis: 100,
  memoryMiB: 32,
})

async function cleanup() {
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MESHLET}=${MESHLET}`] } })
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)))
}

function fail(message: string): never {
  console.error(`bench:executor: ${message}`)
  process.exit(1)
}

interface Timing {
  /** From the call until the engine's `create` event. */
  createEventMs: number
  /** From the call until the API said the container started. */
  returnedMs: number
  /** From the call until the engine's `start` event. */
  startEventMs: number
}

const driver = new DockerDriver()
const events = await ContainerEvents.open(docker)
const ours = (s: ReplicaSpec) => (a: Record<string, string>) => a[LABEL_WORKLOAD] === s.workloadUri
/** The engine's create and start events for this replica's container, as offsets from t0. */
async function engineTimes(s: ReplicaSpec, t0: number): Promise<{ createEventMs: number; startEventMs: number }> {
  const started = await events.next('start', ours(s), 60_000, s.workloadUri)
  const created = events.find('create', ours(s)) ?? started
  return { createEventMs: created.at - t0, startEventMs: started.at - t0 }
}

/** The driver, as the engine calls it once a placement is confirmed; then stopped and removed. */
async function viaDriver(s: ReplicaSpec): Promise<Timing> {
  const t0 = wallMs()
  const info = await driver.start(s)
  const returned = wallMs()
  if (info.state !== 'running') throw new Error(`driver start failed: ${info.message}`)
  const engine = await engineTimes(s, t0)
  await driver.stop(s.workloadUri, s.replica)
  return { returnedMs: returned - t0, ...engine }
}

/** The Docker API straight from this process: the very container the driver would make. */
async function viaApi(s: ReplicaSpec, name: string): Promise<Timing> {
  const config = containerConfig(s, { name })
  const t0 = wallMs()
  const container = await docker.createContainer(config)
  await container.start()
  const returned = wallMs()
  const engine = await engineTimes(s, t0)
  await container.remove({ force: true })
  return { returnedMs: returned - t0, ...engine }
}

try {
  await requireDockerAndImage(docker, IMAGE, fail)
  await cleanup()
  // warm both paths once (the driver's image check, the client's connection)
  await viaDriver(spec('warm-d'))
  await viaApi(spec('warm-a'), `meshlet-bench-exec-${stamp}-warm`)

  const meshlet: Timing[] = []
  const api: Timing[] = []
  for (let i = 0; i < RUNS; i++) {
    // alternate which goes first, so neither always follows the other's cleanup
    if (i % 2 === 0) {
      meshlet.push(await viaDriver(spec(`d${i}`)))
      api.push(await viaApi(spec(`a${i}`), `meshlet-bench-exec-${stamp}-${i}`))
    } else {
      api.push(await viaApi(spec(`a${i}`), `meshlet-bench-exec-${stamp}-${i}`))
      meshlet.push(await viaDriver(spec(`d${i}`)))
    }
  }

  global.gc?.()
  const rssBefore = process.memoryUsage().rss
  const held: ReplicaSpec[] = []
  for (let i = 0; i < RSS_REPLICAS; i++) {
    const s = spec(`rss${i}`)
    const info = await driver.start(s)
    if (info.state !== 'running') throw new Error(`driver start failed: ${info.message}`)
    held.push(s)
  }
  await new Promise((r) => setTimeout(r, 1000))
  global.gc?.()
  const rssPerReplicaKiB = (process.memoryUsage().rss - rssBefore) / 1024 / RSS_REPLICAS
  for (const s of held) await driver.stop(s.workloadUri, 0)

  const p = (xs: Timing[], key: keyof Timing, q: number) => quantile(xs.map((x) => x[key]), q)
  const result = {
    runs: RUNS,
    meshletStartMs: round1(p(meshlet, 'returnedMs', 0.5)),
    meshletStartP90Ms: round1(p(meshlet, 'returnedMs', 0.9)),
    dockerApiStartMs: round1(p(api, 'returnedMs', 0.5)),
    dockerApiStartP90Ms: round1(p(api, 'returnedMs', 0.9)),
    ratio: ratio(median(meshlet.map((x) => x.returnedMs)), median(api.map((x) => x.returnedMs))),
    meshletCreateEventMs: round1(p(meshlet, 'createEventMs', 0.5)),
    dockerApiCreateEventMs: round1(p(api, 'createEventMs', 0.5)),
    meshletStartEventMs: round1(p(meshlet, 'startEventMs', 0.5)),
    dockerApiStartEventMs: round1(p(api, 'startEventMs', 0.5)),
    startEventRatio: ratio(median(meshlet.map((x) => x.startEventMs)), median(api.map((x) => x.startEventMs))),
    rssPerReplicaKiB: round1(Math.max(0, rssPerReplicaKiB)),
  }
  console.error(
    `decision → running: driver p50 ${result.meshletStartMs} ms (p90 ${result.meshletStartP90Ms}) vs Docker API from this process p50 ${result.dockerApiStartMs} ms (p90 ${result.dockerApiStartP90Ms}), ×${result.ratio}; ` +
      `to the engine's create event ${result.meshletCreateEventMs} vs ${result.dockerApiCreateEventMs} ms, start event ${result.meshletStartEventMs} vs ${result.dockerApiStartEventMs} ms (×${result.startEventRatio}); ${result.rssPerReplicaKiB} KiB RSS per running replica`,
  )
  console.log(JSON.stringify(result))
} catch (err) {
  console.error(`bench:executor: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  events.close()
  await driver.close()
  await cleanup()
}
