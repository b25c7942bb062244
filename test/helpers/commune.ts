// Builds communes on a real in-process PLC + PDS: owners, meshlets, two-way links,
// cluster records, capacity heartbeats.
import { DevNetwork, type DevAccount } from '../../src/dev/network.js'
import { linkMeshlet } from '../../src/identity/link.js'
import { COLLECTIONS, type CapacityRecord, type WorkloadRecord } from '../../src/records/index.js'
import { nowIso } from '../../src/util/time.js'

export interface Member {
  name: string
  owner: DevAccount
  meshlet: DevAccount
}

export async function startNetwork(): Promise<DevNetwork> {
  process.env.LOG_ENABLED ??= 'false'
  return DevNetwork.start()
}

export async function addMember(net: DevNetwork, name: string, pdsUrl?: string): Promise<Member> {
  const owner = await net.createAccount(name, pdsUrl)
  const meshlet = await net.createAccount(`${name}-mesh`, pdsUrl)
  await linkMeshlet(owner.writer, meshlet.writer, `${name}'s machine`)
  return { name, owner, meshlet }
}

export async function setCluster(m: Member, name: string, members: Member[]): Promise<void> {
  await m.meshlet.writer.put(COLLECTIONS.cluster, name, {
    $type: COLLECTIONS.cluster,
    members: members.map((x) => x.owner.did),
    createdAt: nowIso(),
  })
}

/** Everyone lists everyone else in one cluster. */
export async function formCluster(name: string, members: Member[]): Promise<void> {
  await Promise.all(members.map((m) => setCluster(m, name, members.filter((x) => x !== m))))
}

export function capacityRecord(over: Partial<CapacityRecord> = {}): CapacityRecord {
  return {
    $type: COLLECTIONS.capacity,
    total: { cpuMillis: 4000, memoryMiB: 8192, storageMiB: 10240 },
    allocatable: { cpuMillis: 4000, memoryMiB: 8192, storageMiB: 10240 },
    drivers: ['docker', 'process'],
    arch: 'amd64',
    heartbeatSeconds: 300,
    updatedAt: nowIso(),
    ...over,
  }
}

export async function publishCapacity(m: Member, over: Partial<CapacityRecord> = {}): Promise<void> {
  await m.meshlet.writer.put(COLLECTIONS.capacity, 'self', capacityRecord(over))
}

/** A small valid workload record on the test image, stamped now. */
export function workloadRecord(over: Partial<WorkloadRecord> = {}): WorkloadRecord {
  return {
    $type: COLLECTIONS.workload,
    image: process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest',
    command: ['echo', 'hi'],
    resources: { cpuMillis: 500, memoryMiB: 256 },
    replicas: 1,
    createdAt: nowIso(),
    ...over,
  }
}
