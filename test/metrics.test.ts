// A meshlet daemon's /metrics, parsed strictly, and moving as a workload runs on the real
// PDS and Docker: placements by phase, answers, writes by kind, replicas by state,
// container start latency, firehose events and records skipped, outbox depth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { parseExposition, sampleValue, type MetricFamily } from '../src/util/metrics.js'
import { waitFor } from '../src/util/time.js'
import { addMember, formCluster, startNetwork, workloadRecord, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'
import { requireDocker } from './helpers/docker.js'

let net: DevNetwork
let members: Member[]
const daemons: Meshlet[] = []

beforeAll(async () => {
  await requireDocker()
  net = await startNetwork()
  members = await Promise.all(['mia', 'max'].map((n) => addMember(net, n)))
  await formCluster('metrics', members)
  for (const m of members) daemons.push(await startMeshlet(net, m, { driver: 'docker', port: 0, resources: { cpuMillis: 2000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 } }))
}, 60_000)

afterAll(async () => {
  await Promise.all(daemons.map((d) => d.close({ stopReplicas: true })))
  await net?.close()
})

async function scrape(d: Meshlet): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${d.url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
  return parseExposition(await res.text())
}
const value = (f: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}) => sampleValue(f, name, labels) ?? 0

describe('a meshlet daemon exposes Prometheus metrics', () => {
  it('parses strictly, and its counts move as a workload is placed, runs and succeeds', async () => {
    const [mine] = daemons
    const before = await scrape(mine)
    expect(value(before, 'meshlet_placements', { phase: 'placed' })).toBe(0)
    expect(value(before, 'meshlet_replicas', { state: 'succeeded' })).toBe(0)
    expect(before.get('meshlet_container_start_seconds')?.type).toBe('histogram')

    // mia's own meshlet ranks first for her workload
    const { uri } = await members[0].owner.writer.create(COLLECTIONS.workload, workloadRecord({ command: ['echo', 'hi'] }))
    await waitFor(() => mine.ctx.state.statusesFor(uri).some((s) => s.did === mine.did && s.record.state === 'succeeded'), { what: 'succeeded', timeoutMs: 60_000 })
    await waitFor(async () => value(await scrape(mine), 'meshlet_repo_writes_total', { kind: 'status:succeeded' }) >= 1, { what: 'the succeeded status written', timeoutMs: 30_000 })

    const after = await scrape(mine)
    expect(value(after, 'meshlet_placements', { phase: 'placed' })).toBeGreaterThanOrEqual(1)
    expect(value(after, 'meshlet_bids_total', { answer: 'offer' })).toBeGreaterThanOrEqual(1)
    expect(value(after, 'meshlet_replicas', { state: 'succeeded' })).toBe(1)
    expect(value(after, 'meshlet_replica_ends_total', { state: 'succeeded' })).toBe(1)
    expect(value(after, 'meshlet_container_start_seconds_count', { outcome: 'running' })).toBe(1)
    expect(value(after, 'meshlet_firehose_events')).toBeGreaterThan(value(before, 'meshlet_firehose_events'))
    expect(value(after, 'meshlet_outbox_depth')).toBe(0)
    // every sample carries the meshlet it describes
    expect(after.get('meshlet_outbox_depth')?.samples[0].labels.meshlet).toBe(mine.did)
    expect(value(after, 'meshlet_firehose_records_skipped', { reason: 'invalid' })).toBe(0)

    // a hostile record (written around meshlet's own validation) is skipped, and counted
    await members[1].meshlet.writer.agent.com.atproto.repo.createRecord({
      repo: members[1].meshlet.did,
      collection: COLLECTIONS.bid,
      record: { $type: COLLECTIONS.bid, workload: { uri: 'nope' }, round: -1, score: 'high', createdAt: 'yesterday' },
      validate: false,
    })
    await waitFor(async () => value(await scrape(mine), 'meshlet_firehose_records_skipped', { reason: 'invalid' }) === 1, { what: 'the invalid record counted', timeoutMs: 30_000 })
    expect(value(await scrape(mine), 'meshlet_firehose_records_skipped', { reason: 'unproven' })).toBe(0)
  }, 120_000)
})
