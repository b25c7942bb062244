// npm run bench:executor — time from a placement decision to a running container, beside a
// plain `docker run` of the same image measured in the same run, and the daemon's memory
// overhead per running replica. Last stdout line: one JSON object.
import { execFileSync } from 'node:child_process'
import Docker from 'dockerode'
import { DockerDriver, LABEL_MESHLET } from '../src/executor/docker.js'
import type { ReplicaSpec } from '../src/executor/types.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const RUNS = Number(process.env.BENCH_RUNS ?? 10)
const RSS_REPLICAS = Number(process.env.BENCH_RSS_REPLICAS ?? 20)
const MESHLET = 'did:plc:benchexecutor'
const docker = new Docker()

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const round1 = (x: number) => Math.round(x * 10) / 10
const spec = (i: number): ReplicaSpec => ({
  workloadUri: `at://did:plc:benchowner/commune.scheduler.workload/b${Date.now().toString(36)}${i}`,
  replica: 0,
  meshletDid: MESHLET,
  image: IMAGE,
  command: ['sleep', '300'],
  cpuMillis: 100,
  memoryMiB: 32,
})

async function cleanup() {
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MESHLET}=${MESHLET}`] } })
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })))
}

await cleanup()
const driver = new DockerDriver()
// warm both paths once (image inspect cache, docker client connection)
const warm = spec(-1)
await driver.start(warm)
await driver.stop(warm.workloadUri, 0)
execFileSync('docker', ['rm', '-f', execFileSync('docker', ['run', '-d', '--network', 'none', IMAGE, 'true']).toString().trim()])

const meshletMs: number[] = []
const dockerMs: number[] = []
for (let i = 0; i < RUNS; i++) {
  const s = spec(i)
  let t = performance.now()
  const info = await driver.start(s)
  meshletMs.push(performance.now() - t)
  if (info.state !== 'running') throw new Error(`start failed: ${info.message}`)
  await driver.stop(s.workloadUri, 0)

  t = performance.now()
  const id = execFileSync('docker', ['run', '-d', '--init', '--network', 'none', '--memory', '32m', IMAGE, 'sleep', '300']).toString().trim()
  dockerMs.push(performance.now() - t)
  execFileSync('docker', ['rm', '-f', id])
}

global.gc?.()
const rssBefore = process.memoryUsage().rss
const held: ReplicaSpec[] = []
for (let i = 0; i < RSS_REPLICAS; i++) {
  const s = spec(1000 + i)
  await driver.start(s)
  held.push(s)
}
await new Promise((r) => setTimeout(r, 1000))
global.gc?.()
const rssPerReplicaKiB = (process.memoryUsage().rss - rssBefore) / 1024 / RSS_REPLICAS
for (const s of held) await driver.stop(s.workloadUri, 0)
await driver.close()
await cleanup()

const result = {
  meshletStartMs: round1(median(meshletMs)),
  dockerRunMs: round1(median(dockerMs)),
  ratio: round1((median(meshletMs) / median(dockerMs)) * 100) / 100,
  rssPerReplicaKiB: round1(Math.max(0, rssPerReplicaKiB)),
}
console.error(`meshlet start ${result.meshletStartMs} ms vs docker run ${result.dockerRunMs} ms (×${result.ratio}); ${result.rssPerReplicaKiB} KiB RSS per running replica`)
console.log(JSON.stringify(result))
