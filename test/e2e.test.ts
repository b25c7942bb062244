// End to end: a workload published on the real PDS runs in a container on the winning
// meshlet (real Docker engine), and its status reaches succeeded with exit code and cpu time.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { place } from '../src/scheduler/placement.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'
import { requireDocker } from './helpers/docker.js'
import { RepoReader } from '../src/repo/reader.js'
import { MeshletClient } from '../src/xrpc/client.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
let net: DevNetwork
let members: Member[]
const daemons: Meshlet[] = []

const containersOf = (did: string) =>
  execFileSync('docker', ['ps', '-aq', '--filter', `label=farm.meshlet.meshlet=${did}`], { encoding: 'utf8' }).split('\n').filter(Boolean)

beforeAll(async () => {
  await requireDocker()
  net = await startNetwork()
  members = await Promise.all(['ann', 'ben'].map((n) => addMember(net, n)))
  await formCluster('e2e', members)
  for (const m of members) daemons.push(await startMeshlet(net, m, { driver: 'docker', port: 0, resources: { cpuMillis: 2000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 } }))
}, 60_000)

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.close({ stopReplicas: true })))
  await net?.close()
})

const workload = (over: Partial<WorkloadRecord>): WorkloadRecord => ({
  $type: COLLECTIONS.workload,
  image: IMAGE,
  resources: { cpuMillis: 500, memoryMiB: 64 },
  replicas: 1,
  createdAt: nowIso(),
  ...over,
})

const statusOn = (d: Meshlet, uri: string) => [...d.ctx.state.statusesFor(uri)].map((s) => s.record)

describe('placement runs real containers', () => {
  it('runs a published workload to succeeded with exit code and cpu time', async () => {
    const [ann] = members
    const { uri } = await ann.owner.writer.create(
      COLLECTIONS.workload,
      workload({ command: ['sh', '-c', 'echo started; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo finished'] }),
    )
    const done = await waitFor(() => statusOn(daemons[1], uri).find((s) => s.state === 'succeeded' || s.state === 'failed'), { timeoutMs: 60_000, what: 'finished status' })
    expect(done.state).toBe('succeeded')
    expect(done.exitCode).toBe(0)
    expect(done.cpuMillis).toBeGreaterThan(0)
    expect(done.memoryPeakBytes).toBeGreaterThan(0)
    const winner = place(daemons[0].ctx.state, uri, Date.now())!.selected[0].meshlet
    const d = daemons.find((x) => x.did === winner)!
    expect(d.ctx.driver!.logs(uri, 0)?.data).toContain('finished')
  })

  it('reports a failing exit code as failed', async () => {
    const { uri } = await members[1].owner.writer.create(COLLECTIONS.workload, workload({ command: ['sh', '-c', 'echo oops >&2; exit 7'] }))
    const done = await waitFor(() => statusOn(daemons[0], uri).find((s) => s.state === 'succeeded' || s.state === 'failed'), { timeoutMs: 60_000, what: 'finished status' })
    expect(done).toMatchObject({ state: 'failed', exitCode: 7 })
  })

  it('stops the container everywhere when the owner deletes the workload record', async () => {
    const [ann] = members
    const { uri } = await ann.owner.writer.create(COLLECTIONS.workload, workload({ command: ['sleep', '300'] }))
    await waitFor(() => statusOn(daemons[1], uri).some((s) => s.state === 'running'), { timeoutMs: 60_000, what: 'running' })
    const winner = place(daemons[0].ctx.state, uri, Date.now())!.selected[0].meshlet
    expect(containersOf(winner).length).toBeGreaterThan(0)
    await ann.owner.writer.delete(COLLECTIONS.workload, uri.split('/').pop()!)
    await waitFor(() => statusOn(daemons[0], uri).some((s) => s.state === 'stopped'), { timeoutMs: 30_000, what: 'stopped' })
    const running = execFileSync('docker', ['ps', '-q', '--filter', `label=farm.meshlet.workload=${uri}`], { encoding: 'utf8' }).trim()
    expect(running).toBe('')
  })

  it('deleteWorkload over XRPC by the workload owner stops the container and records stopped', async () => {
    const [ann] = members
    const { uri } = await ann.owner.writer.create(COLLECTIONS.workload, workload({ command: ['sleep', '300'] }))
    await waitFor(() => statusOn(daemons[0], uri).some((s) => s.state === 'running'), { timeoutMs: 60_000, what: 'running' })
    const winner = place(daemons[0].ctx.state, uri, Date.now())!.selected[0].meshlet
    const client = new MeshletClient(ann.owner.writer.agent, new RepoReader(net.idResolver))
    const res = await client.call(winner, 'farm.meshlet.deleteWorkload', {}, { uri })
    expect(res.replicas[0].state).toBe('stopped')
    expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=farm.meshlet.workload=${uri}`], { encoding: 'utf8' }).trim()).toBe('')
    await waitFor(() => statusOn(daemons[0], uri).some((s) => s.state === 'stopped'), { what: 'stopped on the firehose' })
    // the record stays with its owner, and the meshlet does not start it again
    await new Promise((r) => setTimeout(r, 300))
    expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=farm.meshlet.workload=${uri}`], { encoding: 'utf8' }).trim()).toBe('')
  })

  it('a meshlet killed with running containers and restarted ends with exactly the right set', async () => {
    const [, ben] = members
    const { uri } = await ben.owner.writer.create(COLLECTIONS.workload, workload({ command: ['sleep', '300'] }))
    await waitFor(() => statusOn(daemons[0], uri).some((s) => s.state === 'running'), { timeoutMs: 60_000, what: 'running' })
    const winner = place(daemons[0].ctx.state, uri, Date.now())!.selected[0].meshlet
    const i = daemons.findIndex((d) => d.did === winner)
    const before = containersOf(winner)
    expect(before).toHaveLength(1)
    // the daemon dies without stopping its containers, and an orphan carrying its label appears
    const dataDir = daemons[i].ctx.cfg.dataDir
    await daemons[i].close()
    const orphan = execFileSync('docker', ['run', '-d', '--network', 'none', '--label', `farm.meshlet.meshlet=${winner}`, '--label', `farm.meshlet.workload=at://${winner}/commune.scheduler.workload/3korphanorpha`, '--label', 'farm.meshlet.replica=0', IMAGE, 'sleep', '300'], { encoding: 'utf8' }).trim()
    daemons[i] = await startMeshlet(net, members[i], { driver: 'docker', port: 0, dataDir, resources: { cpuMillis: 2000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 } })
    // the running replica is adopted (same container), the orphan removed, nothing started twice
    expect(containersOf(winner)).toEqual(before)
    expect(containersOf(winner)).not.toContain(orphan.slice(0, 12))
    await daemons[i].ctx.engine.idle()
    expect(containersOf(winner)).toEqual(before)
    expect(statusOn(daemons[i], uri).find((s) => s.replica === 0)?.state).toBe('running')
  })
})
