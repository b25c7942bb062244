// The scenario, end to end on a real PLC + PDS and real Docker, driven only through
// the CLI: four daemons started with `meshlet run` (docker driver) in one cluster; 20
// workloads submitted at once with `meshlet submit` while the machine is busy; every
// workload ends with exactly its replicas (one per meshlet, no packing); one asking for
// more replicas than there are meshlets is queued with its reason; no workload ever has
// more containers at once than replicas; and a foreign `running` status written into a
// meshlet's repo starts nothing there.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import Docker from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { LABEL_MESHLET, LABEL_REPLICA, LABEL_WORKLOAD } from '../src/executor/docker.js'
import { COLLECTIONS, type WorkloadStatusRecord } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { RepoWriter } from '../src/repo/writer.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { nowIso, sleep, waitFor } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { cli, spawnCli, stopChild, waitForLine, ownerEnvOf } from './helpers/cli.js'
import { requireDocker } from './helpers/docker.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const NAMES = ['ana', 'ben', 'cai', 'dot'] as const
type Name = (typeof NAMES)[number]
const MESHLETS = NAMES.length
/** Each daemon offers this much: room for many 0.1-cpu / 16 MiB replicas at once. */
const RESOURCES = { cpuMillis: 4000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 }
const SHORT = ['sh', '-c', 'echo hi']
const SLEEP = ['sh', '-c', 'sleep 20']

interface Replica {
  meshlet: string
  replica: number
  state: string
  exitCode?: number
  message?: string
}
interface StatusJson {
  uri: string
  name?: string
  phase: 'placing' | 'placed' | 'queued' | 'failed'
  placed: number
  wanted: number
  reason: string | null
  replicas: Replica[]
  selected: { meshlet: string; replicas: number; finished: number }[]
  whyNot: { meshlet: string; reason: string }[]
}
interface Submitted {
  name: string
  owner: Name
  uri: string
  cid: string
  replicas: number
  sleeper: boolean
}

let net: DevNetwork
let reader: RepoReader
const docker = new Docker()
const owners = {} as Record<Name, DevAccount>
const meshletOf = {} as Record<Name, string>
const meshletPassword = (n: Name) => `pw-${n}-m`
const meshletHandle = (n: Name) => `${n}-m.test`
const daemons = new Map<Name, ChildProcess>()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-load-'))
let daemonOutput = ''
// MESHLET_TEST_LOG_DIR keeps every daemon line, for reading a failure after the fact
const logFile = process.env.MESHLET_TEST_LOG_DIR ? path.join(process.env.MESHLET_TEST_LOG_DIR, `load-${process.pid}.log`) : undefined
const log = (name: string, d: unknown) => {
  daemonOutput = (daemonOutput + `[${name}] ${d}`).slice(-200_000)
  if (logFile) fs.appendFileSync(logFile, String(d).split('\n').filter(Boolean).map((l) => `[${name}] ${l}\n`).join(''))
}
const T0 = Date.now()
const mark = (what: string) => console.log(`[load +${((Date.now() - T0) / 1000).toFixed(1)}s] ${what}`)
const nameOf = (did: string) => NAMES.find((n) => meshletOf[n] === did) ?? did

const ownerEnv = (a: DevAccount) => ownerEnvOf(a, net.plcUrl)
const specFile = (name: string, body: unknown) => {
  const file = path.join(tmp, `${name}.json`)
  fs.writeFileSync(file, JSON.stringify(body))
  return file
}
const specOf = (name: string, replicas: number, command: string[], extra: Record<string, unknown> = {}) => ({
  name,
  image: IMAGE,
  command,
  replicas,
  resources: { cpu: 0.1, memory: '16Mi' },
  ...extra,
})

async function submit(owner: Name, name: string, spec: Record<string, unknown>): Promise<{ uri: string; cid: string }> {
  const r = await cli(['submit', specFile(name, spec), '--json'], ownerEnv(owners[owner]), 240_000)
  expect(r.code, `${name}: ${r.stderr}`).toBe(0)
  const out = JSON.parse(r.stdout)
  return { uri: out.uri, cid: out.cid }
}

async function statusOf(owner: Name, uri: string): Promise<StatusJson | undefined> {
  const r = await cli(['status', uri, '--json'], ownerEnv(owners[owner]), 120_000)
  return r.code === 0 ? (JSON.parse(r.stdout) as StatusJson) : undefined
}

/**
 * Settled: the phase is final for now (placed, or queued for the wide one) and no replica
 * is in between — no offer left `scheduled` (every selected meshlet started, every offer
 * not selected was withdrawn), and a short workload's replicas all exited.
 */
function settled(s: StatusJson | undefined, w: Submitted): boolean {
  if (!s) return false
  if (s.phase !== (w.replicas > MESHLETS ? 'queued' : 'placed')) return false
  const live = s.replicas.filter((r) => r.state !== 'yielded')
  if (live.length === 0) return false
  return live.every((r) => (w.sleeper ? ['running', 'succeeded'] : ['succeeded']).includes(r.state))
}

// ---- what Docker saw: every container start and death (events), and `docker ps` samples ----

interface ContainerEvent {
  action: 'start' | 'die'
  id: string
  uri: string
  meshlet: string
  replica: number
  timeNano: number
}
const events: ContainerEvent[] = []
let eventStream: NodeJS.ReadableStream | undefined
/** Per workload: the most containers of it seen running at once, and in how many samples it was seen. */
const sampled = new Map<string, { max: number; seen: number; perMeshletMax: number; meshlets: Set<string> }>()
let sampling = false
let sampler: Promise<void> | undefined

async function watchDocker(): Promise<void> {
  eventStream = await docker.getEvents({
    filters: JSON.stringify({ type: ['container'], event: ['start', 'die'], label: [LABEL_WORKLOAD] }),
  } as Docker.GetEventsOptions)
  let buf = ''
  eventStream.on('data', (d: Buffer) => {
    buf += d.toString()
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim()
      buf = buf.slice(i + 1)
      if (!line) continue
      const e = JSON.parse(line) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number }
      const a = e.Actor.Attributes
      if (e.Action !== 'start' && e.Action !== 'die') continue
      events.push({ action: e.Action, id: e.Actor.ID, uri: a[LABEL_WORKLOAD], meshlet: a[LABEL_MESHLET], replica: Number(a[LABEL_REPLICA]), timeNano: e.timeNano })
    }
  })
  eventStream.on('error', () => undefined)
  sampling = true
  sampler = (async () => {
    while (sampling) {
      // `docker ps`: running containers only, by the driver's label
      const list = await docker.listContainers({ filters: JSON.stringify({ label: [LABEL_WORKLOAD] }) } as Docker.ContainerListOptions).catch(() => [])
      const ours = list.filter((c) => Object.values(meshletOf).includes(c.Labels[LABEL_MESHLET]))
      const byUri = new Map<string, string[]>()
      for (const c of ours) byUri.set(c.Labels[LABEL_WORKLOAD], [...(byUri.get(c.Labels[LABEL_WORKLOAD]) ?? []), c.Labels[LABEL_MESHLET]])
      for (const [uri, ms] of byUri) {
        const s = sampled.get(uri) ?? { max: 0, seen: 0, perMeshletMax: 0, meshlets: new Set<string>() }
        s.max = Math.max(s.max, ms.length)
        s.seen++
        for (const m of ms) s.meshlets.add(m)
        s.perMeshletMax = Math.max(s.perMeshletMax, ...[...new Set(ms)].map((m) => ms.filter((x) => x === m).length))
        sampled.set(uri, s)
      }
      await sleep(250)
    }
  })()
}

/** The most containers of a workload running at once, from the engine's start/die events. */
function maxConcurrent(uri: string): number {
  const evs = events.filter((e) => e.uri === uri).sort((a, b) => a.timeNano - b.timeNano)
  const live = new Set<string>()
  let max = 0
  for (const e of evs) {
    if (e.action === 'start') live.add(e.id)
    else live.delete(e.id)
    max = Math.max(max, live.size)
  }
  return max
}
const startsOf = (uri: string) => events.filter((e) => e.uri === uri && e.action === 'start')

/** Runs fn over items, at most `n` at once (each CLI call is a node process on a 2-core machine). */
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i])
      }
    }),
  )
  return out
}

beforeAll(async () => {
  await requireDocker()
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  for (const n of NAMES) owners[n] = await net.createAccount(n)
  await watchDocker()
})

afterAll(async () => {
  sampling = false
  await sampler
  // SIGTERM for two, SIGINT for the others: both stop the daemon and its replicas
  await Promise.all([...daemons].map(([n, c], i) => stopChild(c, i % 2 ? 'SIGINT' : 'SIGTERM', 60_000).catch((err) => console.error(n, err))))
  ;(eventStream as unknown as { destroy?: () => void } | undefined)?.destroy?.()
  const dids = Object.values(meshletOf)
  for (const did of dids) {
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL_MESHLET}=${did}`] }) } as Docker.ContainerListOptions)
    for (const c of left) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
  }
  await net?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
}, 120_000)

describe('load: four CLI daemons, 20 concurrent CLI submissions on a busy machine (real PDS, real Docker)', () => {
  it('four meshlets initialised and run with the CLI (docker driver), all in one cluster', async () => {
    await Promise.all(
      NAMES.map(async (n) => {
        const dir = path.join(tmp, `${n}-mesh`)
        const r = await cli(
          ['init', '--meshlet-handle', meshletHandle(n), '--meshlet-password', meshletPassword(n), '--create', '--data-dir', dir, '--json'],
          ownerEnv(owners[n]),
          120_000,
        )
        expect(r.code, r.stderr).toBe(0)
        meshletOf[n] = JSON.parse(r.stdout).meshlet
        // room for several replicas whatever this machine has (MeshletConfig.resources)
        const file = path.join(dir, 'config.json')
        fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), resources: RESOURCES }, null, 2), { mode: 0o600 })
      }),
    )
    mark('inited')
    await Promise.all(
      NAMES.map(async (n) => {
        const others = NAMES.filter((x) => x !== n).map((x) => owners[x].did)
        const child = spawnCli(['run', '--config', path.join(tmp, `${n}-mesh`, 'config.json'), '--driver', 'docker', '--port', '0', '--cluster', `load=${others.join(',')}`, '--json'], { MESHLET_LOG_LEVEL: 'info' })
        daemons.set(n, child)
        child.stdout!.on('data', (d) => log(n, d))
        child.stderr!.on('data', (d) => log(`${n}!`, d))
        const line = await waitForLine(child, /"did"/, 120_000)
        expect(JSON.parse(line).did).toBe(meshletOf[n])
      }),
    )
    mark('daemons up')
    // every owner sees the three others as verified members
    await Promise.all(
      NAMES.map((n) =>
        waitFor(
          async () => {
            const r = await cli(['cluster', '--json'], ownerEnv(owners[n]))
            if (r.code !== 0) return false
            const members = JSON.parse(r.stdout)[0]?.members ?? []
            return members.length === MESHLETS - 1 && members.every((m: { verified: boolean }) => m.verified)
          },
          { what: `${n}'s cluster verified`, timeoutMs: 120_000, intervalMs: 1000 },
        ),
      ),
    )
    mark('cluster verified')
    // a daemon offers the configured room, with the docker driver
    const cap = await cli(['capacity', '--json'], ownerEnv(owners.ana))
    expect(cap.code, cap.stderr).toBe(0)
    expect(JSON.parse(cap.stdout)[0]).toMatchObject({ drivers: ['docker'], total: { cpuMillis: RESOURCES.cpuMillis } })
  }, 300_000)

  const batch: Submitted[] = []

  it('20 workloads submitted at once while the machine is busy each end with exactly their replicas, never overlapping', async () => {
    expect(daemons.size).toBe(MESHLETS)
    // 19 mixed workloads (replicas 1–3, a few sleeping), from all four owners, plus one
    // asking for more replicas than there are meshlets (no packing)
    const plan = Array.from({ length: 20 }, (_, i) => {
      const wide = i === 19
      const replicas = wide ? MESHLETS + 1 : (i % 3) + 1
      const sleeper = [0, 3, 9, 5, 13].includes(i) // 0, 3, 9: one replica; 5: three; 13: two
      return { name: wide ? 'wide' : `w${String(i).padStart(2, '0')}`, owner: NAMES[i % MESHLETS], replicas, sleeper }
    })

    // the machine is busy for the duration of the submissions
    mark('submitting')
    const burners = [0, 1].map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }))
    try {
      const results = await Promise.all(plan.map((p) => submit(p.owner, p.name, specOf(p.name, p.replicas, p.sleeper ? SLEEP : SHORT))))
      plan.forEach((p, i) => batch.push({ ...p, ...results[i] }))
    } finally {
      for (const b of burners) b.kill('SIGKILL')
    }
    expect(new Set(batch.map((w) => w.uri)).size).toBe(20)
    mark('submitted')

    // poll each owner's `meshlet status --json` (one CLI call lists all its workloads) until every one settles
    let last = new Map<string, StatusJson>()
    await waitFor(
      async () => {
        const lists = await Promise.all(
          NAMES.map(async (n) => {
            const r = await cli(['status', '--json'], ownerEnv(owners[n]), 120_000)
            return r.code === 0 ? (JSON.parse(r.stdout) as StatusJson[]) : []
          }),
        )
        last = new Map(lists.flat().map((s) => [s.uri, s]))
        return batch.every((w) => settled(last.get(w.uri), w))
      },
      { what: 'every workload settled', timeoutMs: 240_000, intervalMs: 1000 },
    ).catch((err) => {
      for (const w of batch.filter((x) => !settled(last.get(x.uri), x))) console.error(`not settled: ${w.name} ${JSON.stringify(last.get(w.uri))}`)
      console.error(`daemons:\n${daemonOutput.slice(-8000)}`)
      throw err
    })
    mark('all settled (lists)')
    // then each one's own `meshlet status URI --json`, polled until it shows the same (a few CLI calls at once: each is a node process)
    const finals = await pool(batch, 5, async (w) => {
      let s: StatusJson | undefined
      await waitFor(async () => settled((s = await statusOf(w.owner, w.uri)), w), { what: `${w.name} settled`, timeoutMs: 120_000, intervalMs: 1000 }).catch((err) => {
        console.error(`${w.name}: ${JSON.stringify(s)}\ndaemons:\n${daemonOutput.slice(-8000)}`)
        throw err
      })
      return s!
    })
    mark('finals read')
    for (const [i, w] of batch.entries()) {
      const s = finals[i]
      const ctx = `${w.name} (${w.replicas} replica(s)${w.sleeper ? ', sleeping' : ''}): ${JSON.stringify(s)}`
      const want = Math.min(w.replicas, MESHLETS)
      const live = s.replicas.filter((r) => r.state !== 'yielded')
      // exactly its replicas: one per meshlet, no meshlet twice
      expect(new Set(live.map((r) => r.meshlet)).size, ctx).toBe(want)
      expect(live, ctx).toHaveLength(want)
      for (const r of live) {
        expect(w.sleeper ? ['running', 'succeeded'] : ['succeeded'], ctx).toContain(r.state)
        if (r.state === 'succeeded') expect(r.exitCode, ctx).toBe(0)
      }
      expect(s.wanted, ctx).toBe(w.replicas)
      expect(s.placed, ctx).toBe(want)
      if (w.replicas > MESHLETS) {
        expect(s.phase, ctx).toBe('queued')
        expect(s.placed, ctx).toBe(MESHLETS)
        expect(s.reason, ctx).toMatch(/queued/)
        expect(s.reason, ctx).toMatch(new RegExp(`^${w.replicas - MESHLETS} replica\\(s\\) queued: `))
      } else {
        expect(s.phase, ctx).toBe('placed')
        expect(s.reason, ctx).toBeNull()
      }
      // what Docker saw: one container per meshlet holding a replica, never one more
      const starts = startsOf(w.uri)
      const startedOn = starts.map((e) => e.meshlet)
      expect(new Set(startedOn).size, `${ctx}\nstarts: ${JSON.stringify(starts)}`).toBe(startedOn.length)
      // what `docker ps` saw too: tells a start event Docker did not deliver from a container that never ran
      const psSaw = [...(sampled.get(w.uri)?.meshlets ?? [])]
      expect(new Set(startedOn), `${ctx}\nstarts: ${JSON.stringify(starts)}\ndocker ps saw: ${JSON.stringify(psSaw)}`).toEqual(new Set(live.map((r) => r.meshlet)))
      expect(maxConcurrent(w.uri), ctx).toBeLessThanOrEqual(want)
      const seen = sampled.get(w.uri)
      if (seen) {
        expect(seen.max, ctx).toBeLessThanOrEqual(want)
        expect(seen.perMeshletMax, ctx).toBeLessThanOrEqual(1)
      }
    }
  }, 420_000)

  it('zero overlaps: each one-replica sleeper never had more than one container at once in `docker ps`', async () => {
    const sleepers = batch.filter((w) => w.sleeper && w.replicas === 1)
    expect(sleepers.length).toBeGreaterThanOrEqual(3)
    // keep sampling until they are over
    await waitFor(async () => (await Promise.all(sleepers.map((w) => statusOf(w.owner, w.uri)))).every((s) => s?.replicas.some((r) => r.state === 'succeeded')), {
      what: 'sleepers finished',
      timeoutMs: 180_000,
      intervalMs: 2000,
    })
    for (const w of sleepers) {
      const seen = sampled.get(w.uri)
      // a 20-second sleeper is seen by `docker ps` while it runs, and never twice
      expect(seen, w.name).toBeDefined()
      expect(seen!.seen, w.name).toBeGreaterThan(0)
      expect(seen!.max, w.name).toBe(1)
      expect(seen!.meshlets.size, w.name).toBe(1)
      expect(maxConcurrent(w.uri), w.name).toBe(1)
      expect(startsOf(w.uri), w.name).toHaveLength(1)
    }
  }, 240_000)

  it('a foreign `running` status in a meshlet repo starts nothing there', async () => {
    expect(daemons.size).toBe(MESHLETS)
    const A: Name = 'ana'
    const D: Name = 'dot'
    const dWriter = await RepoWriter.login(net.pdsUrl, meshletHandle(D), meshletPassword(D))
    expect(dWriter.did).toBe(meshletOf[D])
    const forge = async (w: { uri: string; cid: string }) => {
      const record: WorkloadStatusRecord = {
        $type: COLLECTIONS.workloadStatus,
        workload: { uri: w.uri, cid: w.cid },
        replica: 0,
        round: 0,
        state: 'running',
        startedAt: nowIso(),
        updatedAt: nowIso(),
      }
      await dWriter.put(COLLECTIONS.workloadStatus, statusRecordKey(w.uri, 0), record)
    }
    const dRecord = async (uri: string) => {
      const res = await reader.get(meshletOf[D], COLLECTIONS.workloadStatus, statusRecordKey(uri, 0))
      return res.ok ? res.value.record : undefined
    }

    // 1. a workload only meshlet A may take (D is infeasible:not-allowed); the forged status is written at once
    const pinned = await submit('ben', 'pinned', specOf('pinned', 1, SLEEP, { constraints: { meshlets: [meshletOf[A]] } }))
    await forge(pinned)

    // 2. a workload of A's owner: A's own meshlet ranks first and takes it; D is a candidate
    // that was never asked. The forged status is written once A runs it.
    const mine = await submit(A, 'ana-own', specOf('ana-own', 1, SLEEP))
    const placedOnA = await waitFor(
      async () => {
        const s = await statusOf(A, mine.uri)
        return s?.replicas.some((r) => r.meshlet === meshletOf[A] && r.state === 'running') ? s : undefined
      },
      { what: 'ana-own running on A', timeoutMs: 120_000, intervalMs: 1000 },
    )
    expect(placedOnA.selected.map((x) => x.meshlet)).toEqual([meshletOf[A]])
    await forge(mine)

    for (const [owner, w] of [['ben', pinned], [A, mine]] as const) {
      // D withdraws the forged status...
      const ended = await waitFor(
        async () => {
          const r = await dRecord(w.uri)
          return r && ['yielded', 'stopped'].includes(r.state) ? r : undefined
        },
        { what: `D's forged status for ${w.uri} withdrawn`, timeoutMs: 120_000, intervalMs: 1000 },
      ).catch((err) => {
        console.error(`daemons:\n${daemonOutput.slice(-8000)}`)
        throw err
      })
      expect(['yielded', 'stopped']).toContain(ended.state)
      mark(`D's forged status for ${w === pinned ? 'pinned' : 'ana-own'} ended ${ended.state}: ${ended.message ?? ''}`)
      // ...A runs the workload, to the end, and nobody else does
      const s = await waitFor(
        async () => {
          const st = await statusOf(owner, w.uri)
          return st?.replicas.some((r) => r.meshlet === meshletOf[A] && r.state === 'succeeded') ? st : undefined
        },
        { what: `${w.uri} succeeded on A`, timeoutMs: 180_000, intervalMs: 2000 },
      )
      const ctx = JSON.stringify(s)
      expect(s.phase, ctx).toBe('placed')
      expect(s.selected.map((x) => x.meshlet), ctx).toEqual([meshletOf[A]])
      expect(s.replicas.filter((r) => r.state !== 'yielded' && r.state !== 'stopped').map((r) => r.meshlet), ctx).toEqual([meshletOf[A]])
      expect(s.replicas.find((r) => r.meshlet === meshletOf[D])?.state, ctx).toMatch(/^(yielded|stopped)$/)
      // Docker never saw D start a container for it, and `docker ps` never listed one of D's
      const starts = startsOf(w.uri)
      expect(starts.map((e) => nameOf(e.meshlet)), ctx).toEqual([A])
      expect(sampled.get(w.uri)?.meshlets ?? new Set(), ctx).not.toContain(meshletOf[D])
      expect(maxConcurrent(w.uri), ctx).toBe(1)
    }
    // D's daemon is still up and has no container of either
    expect(daemons.get(D)!.exitCode).toBeNull()
    const dContainers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL_MESHLET}=${meshletOf[D]}`] }) } as Docker.ContainerListOptions)
    expect(dContainers.filter((c) => [pinned.uri, mine.uri].includes(c.Labels[LABEL_WORKLOAD]))).toEqual([])
  }, 300_000)
})
