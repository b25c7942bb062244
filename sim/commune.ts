// A commune of many meshlets in simulated time, as a discrete-event simulation driving
// the real pure core: each meshlet keeps its own PublicState of the repos it follows,
// runs place() and decide() on it with its own skewed clock, and applies the decision to
// simulated processes and records. Unlike test/scheduler/sim.ts (every record to every
// meshlet, every meshlet stepped every 100 ms) it only does work when something happens:
// a record reaches a meshlet that follows its repo, a placement deadline passes, a
// process ends. On a delivery a meshlet re-evaluates only the workloads the record
// concerns. Seeded: the same options give the same report.
import type { Collection, RecordTypes } from '../src/records/index.js'
import { decide, type LocalReplica } from '../src/scheduler/decide.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { place, type Placement } from '../src/scheduler/placement.js'
import { isEnded, isFinal } from '../src/scheduler/replica.js'
import { PublicState, type Stored } from '../src/scheduler/state.js'
import { cid, did, mulberry32, rec, T0 } from '../test/scheduler/world.js'
import { EventQueue } from './queue.js'
import { buildTopology } from './topology.js'

export interface SimOptions {
  meshlets: number
  workloads: number
  seed: number
  /** Called now and then with a line of progress. */
  progress?: (line: string) => void
}

export interface SimReport {
  meshlets: number
  owners: number
  workloads: number
  seed: number
  simulatedSeconds: number
  wallSeconds: number
  violations: { count: number; first: string[] }
  settled: { placed: number; queued: number; failed: number; unsettled: number }
  /** Commits by honest meshlets, lifecycle statuses included (a bid and the `scheduled` statuses riding in it are one commit), per placed replica. */
  commitsPerPlacedReplica: number
  /** Records per workload to place it: the workload, offers and their `scheduled` statuses, declines, yields, could-not-run (not `running` nor finished statuses). */
  placementRecordsPerWorkload: number
  /** The protocol's bound, 1 + 2 × replicas, averaged over the workloads. */
  boundPerWorkload: number
  /** Workloads whose placement records exceed 1 + 2 × replicas, and of those how many no loss or adversary touched. */
  placementOverBound: { workloads: number; untouchedByLossOrAdversary: number }
  replacementSeconds: { losses: number; replaced: number; p50: number | null; p99: number | null }
  cpuMicrosPerDeliveredEvent: number
  heapBytesPerMeshlet: number
  eventsDelivered: number
  deaths: number
  partitions: number
  adversaries: number
}

const HB_SECONDS = 300
const HB_MS = HB_SECONDS * 1000
const MAX_SKEW_MS = 2000
/** Deliveries lost on the live stream arrive after a reconnect replays from the cursor. */
const REPLAY_MS = { min: 5_000, max: 60_000 }

interface Written {
  repo: string
  /** Owner index whose followers receive it. */
  owner: number
  collection: Collection
  stored: Stored<unknown>
}

interface Proc {
  uri: string
  replica: number
  token: number
}

interface Meshlet {
  i: number
  did: string
  owner: number
  slots: number
  skew: number
  adversary: boolean
  view: PublicState
  procs: Map<string, Proc>
  alive: boolean
  partitionedUntil: number
  /** Records not delivered while dead or partitioned: the firehose replays them from the cursor. */
  backlog: Written[]
  onlineSince: number
  /** Its own status records that are not ended: the room they reserve. */
  held: Set<string>
  bidSeq: number
  /** Pending placement deadline per workload (simulated ms). */
  timers: Map<string, number>
  /** Re-evaluations already queued, so a burst of records costs one. */
  pending: Set<string>
  /** Unfinished workloads per meshlet that is a candidate or holder: what a heartbeat can change. */
  byCandidate: Map<string, Set<string>>
  /** Queued workloads this meshlet may offer into when room frees. */
  offerable: Set<string>
}

type Event =
  | { at: number; seq: number; kind: 'deliver'; to: number; w: Written }
  | { at: number; seq: number; kind: 'workload'; k: number }
  | { at: number; seq: number; kind: 'heartbeat'; i: number }
  | { at: number; seq: number; kind: 'eval'; i: number; uri: string }
  | { at: number; seq: number; kind: 'timer'; i: number; uri: string }
  | { at: number; seq: number; kind: 'finish'; i: number; key: string; token: number }
  | { at: number; seq: number; kind: 'die'; i: number }
  | { at: number; seq: number; kind: 'return'; i: number }
  | { at: number; seq: number; kind: 'partition'; members: number[]; until: number }
  | { at: number; seq: number; kind: 'heal'; members: number[] }
  | { at: number; seq: number; kind: 'adversary'; i: number; uri: string }

type NewEvent = Event extends infer E ? (E extends Event ? Omit<E, 'seq'> : never) : never

const iso = (ms: number) => new Date(ms).toISOString()

export function simulate(opts: SimOptions): SimReport {
  const wallStart = performance.now()
  const rand = mulberry32(opts.seed)
  const advRand = mulberry32(opts.seed ^ 0x5eed)
  const topo = buildTopology(opts.meshlets, rand)
  const ownerDids = Array.from({ length: topo.owners }, (_, o) => did(`sim-owner-${opts.seed}-${o}`))
  const adversaries = new Set<number>()
  const adversaryCount = Math.max(1, Math.round(opts.meshlets / 100))
  while (adversaries.size < adversaryCount) adversaries.add(Math.floor(rand() * opts.meshlets))

  const ms: Meshlet[] = topo.ownerOf.map((owner, i) => ({
    i,
    did: did(`sim-meshlet-${opts.seed}-${i}`),
    owner,
    slots: 2 + Math.floor(rand() * 3),
    skew: Math.round((rand() * 2 - 1) * MAX_SKEW_MS),
    adversary: adversaries.has(i),
    view: new PublicState(),
    procs: new Map(),
    alive: true,
    partitionedUntil: -Infinity,
    backlog: [],
    onlineSince: T0 - 3_600_000,
    held: new Set(),
    bidSeq: 0,
    timers: new Map(),
    pending: new Set(),
    byCandidate: new Map(),
    offerable: new Set(),
  }))
  const ownerOfRepo = new Map<string, number>()
  ownerDids.forEach((d, o) => ownerOfRepo.set(d, o))
  ms.forEach((m) => ownerOfRepo.set(m.did, m.owner))

  // Load: arrivals paced so that on average about a third of all slots are busy.
  const totalSlots = ms.reduce((n, m) => n + m.slots, 0)
  const meanReplicaSeconds = 2 * ((10 + 600) / 2)
  const arrivalsPerSecond = (totalSlots / 3) / meanReplicaSeconds
  const activeMs = Math.ceil((opts.workloads / arrivalsPerSecond) * 1000)
  // quiet long enough for a loss to expire (3 heartbeats), be re-placed and finish, and replays to land
  const endMs = activeMs + 3 * HB_MS + 1_800_000

  const violations: string[] = []
  const violate = (what: string) => violations.push(what)
  const queue = new EventQueue<Event>()
  const push = (e: NewEvent) => queue.push(e as Omit<Event, 'seq'>)
  const lastDelivery = ms.map(() => new Map<string, number>())
  let partitions = 0
  let deaths = 0
  let eventsDelivered = 0
  let cpuMicros = 0

  /** A meshlet's capacity record as written at `t` (its own clock): a heartbeat. */
  const capacityOf = (m: Meshlet, t: number, version: string): Stored<unknown> => {
    const total = { cpuMillis: 1000 * m.slots, memoryMiB: 1024 * m.slots }
    const record = { $type: 'commune.scheduler.capacity', total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: HB_SECONDS, onlineSince: iso(m.onlineSince + m.skew), updatedAt: iso(t + m.skew) }
    return { uri: `at://${m.did}/commune.scheduler.capacity/self`, cid: cid(`${m.did}#hb#${version}`), did: m.did, rkey: 'self', record }
  }

  // the standing records (links and clusters): every meshlet read them at startup
  ms.forEach((m) => {
    const o = ownerDids[m.owner]
    const members = [...topo.members[m.owner]].sort((a, b) => a - b).map((x) => ownerDids[x])
    for (const r of [
      rec('commune.scheduler.meshletOwner', m.did, 'self', { owner: o, createdAt: iso(T0 - 4_000_000) }),
      rec('commune.scheduler.meshlet', o, m.did, { meshlet: m.did, createdAt: iso(T0 - 4_000_000) }),
      rec('commune.scheduler.cluster', m.did, 'c', { members, createdAt: iso(T0 - 3_900_000) }),
    ]) {
      for (const to of topo.followers[m.owner]) ms[to].view.put(r.collection, r.stored)
    }
    // online for an hour already: the heartbeat before the first simulated one is known
    // everywhere (otherwise a meshlet whose first simulated heartbeat is lost and replayed
    // would be unknown somewhere while others rank it; see docs/protocol.md, known limits)
    const previous = capacityOf(m, T0 - 2 * HB_MS, 'previous')
    for (const to of topo.followers[m.owner]) ms[to].view.put('commune.scheduler.capacity', previous as never)
  })

  // workloads: who, how many replicas, when, for how long
  const workloads = Array.from({ length: opts.workloads }, (_, k) => {
    const owner = Math.floor(rand() * topo.owners)
    const rkey = `3kwl${String(k).padStart(9, 'a')}`
    const uri = `at://${ownerDids[owner]}/commune.scheduler.workload/${rkey}`
    return {
      k,
      owner,
      rkey,
      uri,
      replicas: 1 + Math.floor(rand() * 3),
      packing: rand() < 0.3,
      atMs: Math.floor(rand() * activeMs),
      durationMs: 10_000 + Math.floor(rand() * 590_000),
      ownerSkew: Math.round((rand() * 2 - 1) * MAX_SKEW_MS),
    }
  })
  const byUri = new Map(workloads.map((w) => [w.uri, w]))
  for (const w of workloads) push({ at: T0 + w.atMs, kind: 'workload', k: w.k })

  // heartbeats, staggered; the first ones are known everywhere before work arrives
  ms.forEach((m, i) => push({ at: T0 - Math.floor(rand() * HB_MS), kind: 'heartbeat', i }))

  // deaths (two thirds return), partitions
  const deathCount = Math.max(1, Math.round(opts.meshlets * 0.03))
  for (let d = 0; d < deathCount; d++) {
    const i = Math.floor(rand() * opts.meshlets)
    const at = T0 + Math.floor(rand() * activeMs * 0.8)
    push({ at, kind: 'die', i })
    if (rand() < 2 / 3) push({ at: at + 600_000 + Math.floor(rand() * 1_800_000), kind: 'return', i })
  }
  const partitionCount = Math.max(1, Math.round(opts.meshlets / 200))
  for (let p = 0; p < partitionCount; p++) {
    const size = Math.max(1, Math.round(opts.meshlets * 0.05))
    const members = [...new Set(Array.from({ length: size }, () => Math.floor(rand() * opts.meshlets)))].sort((a, b) => a - b)
    const at = T0 + Math.floor(rand() * activeMs * 0.8)
    push({ at, kind: 'partition', members, until: at + 30_000 + Math.floor(rand() * 270_000) })
  }

  // per workload: honest commits, whether a loss or an adversary touched it, copies now
  const commits = new Map<string, number>()
  const touched = new Set<string>()
  const running = new Map<string, number>()
  const completions = new Map<string, Set<string>>()
  const lossesPending = new Map<string, number[]>()
  const replacement: number[] = []
  let losses = 0

  /** A latency from a lognormal-ish distribution, median ~300 ms, within 50 ms–5 s. */
  const latency = () => {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
    return Math.min(5000, Math.max(50, Math.round(300 * Math.exp(0.9 * z))))
  }

  const publish = (from: number | null, w: Written, t: number) => {
    if (from !== null) ms[from].view.put(w.collection, w.stored as never) // its own writes, believed at once
    for (const to of topo.followers[w.owner]) {
      if (to === from) continue
      let at = t + latency()
      if (rand() < 0.05) at += REPLAY_MS.min + Math.floor(rand() * (REPLAY_MS.max - REPLAY_MS.min)) // lost; replayed
      // a repo's records reach each follower in the order they were written
      at = Math.max(at, lastDelivery[to].get(w.repo) ?? 0)
      lastDelivery[to].set(w.repo, at)
      push({ at, kind: 'deliver', to, w })
      if (rand() < 0.05) push({ at, kind: 'deliver', to, w }) // delivered twice
    }
  }

  const writeOwn = (i: number, collection: Collection, rkey: string, record: unknown, t: number) => {
    const m = ms[i]
    const uri = `at://${m.did}/${collection}/${rkey}`
    publish(i, { repo: m.did, owner: m.owner, collection, stored: { uri, cid: cid(`${uri}#${t}#${m.bidSeq++}`), did: m.did, rkey, record } }, t)
  }

  const countCommit = (uri: string) => commits.set(uri, (commits.get(uri) ?? 0) + 1)
  // records written to place a workload (its offers, their `scheduled` statuses, declines,
  // yields, could-not-run), apart from a placed replica's own `running` and finished statuses
  const placementRecords = new Map<string, number>()
  const countPlacement = (uri: string, n: number) => placementRecords.set(uri, (placementRecords.get(uri) ?? 0) + n)

  const putStatus = (i: number, ref: { uri: string; cid: string }, replica: number, state: string, t: number, extra: Record<string, unknown> = {}) => {
    const m = ms[i]
    const record = { $type: 'commune.scheduler.workloadStatus', workload: ref, replica, round: 0, state, ...extra, updatedAt: iso(t + m.skew) } as RecordTypes['commune.scheduler.workloadStatus']
    const rkey = statusRecordKey(ref.uri, replica)
    writeOwn(i, 'commune.scheduler.workloadStatus', rkey, record, t)
    const key = `${ref.uri}#${replica}`
    if (isEnded(record)) m.held.delete(key)
    else m.held.add(key)
  }

  const heartbeat = (i: number, t: number) => {
    const m = ms[i]
    publish(i, { repo: m.did, owner: m.owner, collection: 'commune.scheduler.capacity', stored: capacityOf(m, t, String(t)) }, t)
  }

  const schedule = (i: number, uri: string, t: number) => {
    const m = ms[i]
    if (m.pending.has(uri)) return
    m.pending.add(uri)
    push({ at: t + 1, kind: 'eval', i, uri })
  }

  const roomFreed = (i: number, t: number) => {
    for (const uri of [...ms[i].offerable].sort()) schedule(i, uri, t)
  }

  // What a heartbeat can change: while a workload is being placed or queued, any
  // candidate's (stale, late, lost); once placed, only its holders' (lost or not).
  const index = (m: Meshlet, uri: string, p: Placement | undefined) => {
    const done = !p || p.phase === 'failed' || (p.phase === 'placed' && p.selected.every((s) => s.via === 'finished'))
    const holders = new Set(p?.selected.map((s) => s.meshlet) ?? [])
    for (const did of new Set([...(p?.candidates.map((c) => c.did) ?? []), ...holders])) {
      let set = m.byCandidate.get(did)
      if (done || (p!.phase === 'placed' && !holders.has(did))) {
        set?.delete(uri)
        continue
      }
      if (!set) m.byCandidate.set(did, (set = new Set()))
      set.add(uri)
    }
    if (p?.phase === 'queued' && p.nextRound?.pool.includes(m.did)) m.offerable.add(uri)
    else m.offerable.delete(uri)
  }

  const stopProc = (m: Meshlet, key: string) => {
    const p = m.procs.get(key)
    if (!p) return
    m.procs.delete(key)
    if (!m.adversary) running.set(p.uri, (running.get(p.uri) ?? 1) - 1)
  }

  let procToken = 0
  const evaluate = (i: number, uri: string, t: number) => {
    const m = ms[i]
    if (!m.alive || m.adversary) return
    const w = byUri.get(uri)
    if (!w || !topo.covered[m.owner].has(w.owner)) return
    const now = t + m.skew
    const p = place(m.view, uri, now)
    index(m, uri, p)
    if (p?.nextDeadline != null) {
      const at = Math.max(t + 1, p.nextDeadline - m.skew + 1)
      if (m.timers.get(uri) !== at) {
        m.timers.set(uri, at)
        push({ at, kind: 'timer', i, uri })
      }
    } else m.timers.delete(uri)
    const workload = m.view.workloads.get(uri)
    const replicas = new Map<number, LocalReplica>()
    for (const s of m.view.statusesFor(uri)) if (s.did === m.did) replicas.set(s.record.replica, { replica: s.record.replica, status: s.record, process: 'none' })
    for (const pr of m.procs.values()) if (pr.uri === uri) replicas.set(pr.replica, { ...(replicas.get(pr.replica) ?? { replica: pr.replica }), process: 'running' })
    const room = workload ? Math.max(0, Math.min(m.slots - Math.max(m.held.size, m.procs.size), workload.record.allowPacking ? workload.record.replicas : 1)) : 0
    const d = decide(p, { did: m.did, room, replicas: [...replicas.values()] })
    const ref = workload && { uri, cid: workload.cid }
    let wrote = false
    if (d.answer && ref) {
      const a = d.answer
      const rkey = `3kb${String(i).padStart(4, 'a')}${String(m.bidSeq).padStart(7, 'a')}`
      writeOwn(i, 'commune.scheduler.bid', rkey, { $type: 'commune.scheduler.bid', workload: ref, round: a.round, score: a.score, ...(a.slots > 1 ? { slots: a.slots } : {}), ...(a.accept ? {} : { decline: true, reason: a.reason }), createdAt: iso(now) }, t)
      // the `scheduled` statuses ride in the bid's commit
      for (const r of a.scheduled) putStatus(i, ref, r, 'scheduled', t, { round: a.round })
      countCommit(uri)
      countPlacement(uri, 1 + a.scheduled.length)
      wrote = true
    }
    for (const s of d.stop) {
      stopProc(m, `${uri}#${s.replica}`)
      const prev = m.view.statuses.get(`at://${m.did}/commune.scheduler.workloadStatus/${statusRecordKey(uri, s.replica)}`)?.record
      if (prev && !isEnded(prev)) {
        putStatus(i, prev.workload, s.replica, s.state, t, { message: s.message, finishedAt: iso(now) })
        countCommit(uri)
        countPlacement(uri, 1)
      }
      wrote = true
    }
    for (const c of d.cannotRun) {
      if (!ref) continue
      putStatus(i, ref, c.replica, 'failed', t, { message: c.message, finishedAt: iso(now) })
      countCommit(uri)
      countPlacement(uri, 1)
      wrote = true
    }
    for (const r of d.start) {
      if (!ref) continue
      const prev = m.view.statuses.get(`at://${m.did}/commune.scheduler.workloadStatus/${statusRecordKey(uri, r)}`)?.record
      if (prev && isFinal(prev) && prev.workload.cid === ref.cid) violate(`${m.did} restarted finished replica ${r} of ${uri}`)
      const key = `${uri}#${r}`
      const token = ++procToken
      m.procs.set(key, { uri, replica: r, token })
      push({ at: t + w.durationMs, kind: 'finish', i, key, token })
      const copies = (running.get(uri) ?? 0) + 1 + (completions.get(uri)?.size ?? 0)
      running.set(uri, copies - (completions.get(uri)?.size ?? 0))
      if (copies > w.replicas) violate(`${copies} copies of ${uri} (replicas ${w.replicas}) at ${(t - T0) / 1000}s: meshlet ${i} started replica ${r}`)
      if (process.env.SIM_TRACE && copies > w.replicas) console.error(JSON.stringify({ i, alive: ms.map((x) => x.alive).join(''), selected: p?.selected.map((x) => ({ ...x, meshlet: ms.findIndex((y) => y.did === x.meshlet) })), whyNot: p?.whyNot.map((x) => [ms.findIndex((y) => y.did === x.meshlet), x.reason]), done: [...(completions.get(uri) ?? [])].map((x) => ms.findIndex((y) => x.startsWith(y.did))) }))
      const lost = lossesPending.get(uri)
      if (lost?.length) replacement.push((t - lost.shift()!) / 1000)
      putStatus(i, ref, r, 'running', t, { startedAt: iso(now) })
      countCommit(uri)
      wrote = true
    }
    if (d.stop.length || d.cannotRun.length) roomFreed(i, t)
    // its own writes change its placement: look again (as the engine does after its outbox commits)
    if (wrote) schedule(i, uri, t)
  }

  const onRecord = (i: number, w: Written, t: number) => {
    const m = ms[i]
    const record = w.stored.record as { workload?: { uri: string } }
    if (w.collection === 'commune.scheduler.workload') {
      if (m.adversary && m.alive && topo.covered[m.owner].has(w.owner)) push({ at: t + 100 + Math.floor(advRand() * 3000), kind: 'adversary', i, uri: w.stored.uri })
      else evaluate(i, w.stored.uri, t)
    } else if (w.collection === 'commune.scheduler.capacity') {
      for (const uri of [...(m.byCandidate.get(w.stored.did) ?? [])].sort()) evaluate(i, uri, t)
    } else if (record.workload?.uri) evaluate(i, record.workload.uri, t)
  }

  // As formation does (src/cluster/formation.ts): a finished replica served for an owner this
  // meshlet does not follow brings that workload's record with it, so fair share counts it here too.
  const published = new Map<string, Written>()
  const readServedWorkload = (m: Meshlet, w: Written) => {
    if (w.collection !== 'commune.scheduler.workloadStatus') return
    const s = w.stored.record as { workload: { uri: string }; cpuMillis?: number; finishedAt?: string }
    if (!s.cpuMillis || !s.finishedAt || m.view.workloads.has(s.workload.uri)) return
    const record = published.get(s.workload.uri)
    if (record) m.view.put(record.collection, record.stored as never)
  }

  const deliver = (to: number, w: Written, t: number) => {
    const m = ms[to]
    if (!m.alive || t < m.partitionedUntil) {
      m.backlog.push(w)
      return
    }
    eventsDelivered++
    // time spent handling it (the simulation is one busy thread, so this is its CPU time;
    // process.cpuUsage() per event was a tenth of the whole run)
    const before = performance.now()
    if (m.view.put(w.collection, w.stored as never)) {
      readServedWorkload(m, w)
      onRecord(to, w, t)
    }
    cpuMicros += (performance.now() - before) * 1000
  }

  // A backlog replayed from the cursor is applied whole before anything is evaluated, as
  // a daemon catches up before it acts: halfway through, old heartbeats would make every
  // other meshlet look lost.
  const replayBacklog = (i: number, t: number) => {
    const m = ms[i]
    const backlog = m.backlog
    m.backlog = []
    const before = performance.now()
    const affected = new Set<string>()
    for (const w of backlog) {
      eventsDelivered++
      if (!m.view.put(w.collection, w.stored as never)) continue
      readServedWorkload(m, w)
      if (w.collection === 'commune.scheduler.capacity') for (const uri of m.byCandidate.get(w.stored.did) ?? []) affected.add(uri)
      else if (w.collection === 'commune.scheduler.workload') affected.add(w.stored.uri)
      else {
        const target = (w.stored.record as { workload?: { uri: string } }).workload?.uri
        if (target) affected.add(target)
      }
    }
    for (const uri of [...affected].sort()) {
      if (m.adversary) {
        const w = byUri.get(uri)
        if (w && topo.covered[m.owner].has(w.owner) && backlog.some((x) => x.stored.uri === uri)) push({ at: t + 100 + Math.floor(advRand() * 3000), kind: 'adversary', i, uri })
      } else evaluate(i, uri, t)
    }
    cpuMicros += (performance.now() - before) * 1000
  }

  // an adversarial member: silence (it heartbeats but never answers), backdated answers,
  // answers for the wrong version, forged statuses
  const adversaryActs = (i: number, uri: string, t: number) => {
    const m = ms[i]
    const workload = m.view.workloads.get(uri)
    if (!m.alive || !workload) return
    touched.add(uri)
    if (advRand() < 0.3) return
    const createdAt = Date.parse(workload.record.createdAt)
    const bid = (wrongCid: boolean) => {
      const rkey = `3kx${String(i).padStart(4, 'a')}${String(m.bidSeq).padStart(7, 'a')}`
      const record = { $type: 'commune.scheduler.bid', workload: { uri, cid: wrongCid ? cid(`forged ${uri}`) : workload.cid }, round: advRand() < 0.8 ? 0 : 1, score: 999999, ...(advRand() < 0.5 ? { decline: true } : {}), createdAt: iso(createdAt - Math.floor(advRand() * 600_000)) }
      writeOwn(i, 'commune.scheduler.bid', rkey, record, t)
    }
    bid(false)
    if (advRand() < 0.3) bid(true)
    if (advRand() < 0.3) {
      const record = { $type: 'commune.scheduler.workloadStatus', workload: { uri, cid: workload.cid }, replica: 0, state: advRand() < 0.5 ? 'running' : 'succeeded', exitCode: 0, updatedAt: iso(t) }
      writeOwn(i, 'commune.scheduler.workloadStatus', statusRecordKey(uri, 0), record, t)
    }
  }

  let lastProgress = performance.now()
  let handled = 0
  const kinds = new Map<string, number>()
  for (let e = queue.pop(); e && e.at <= T0 + endMs; e = queue.pop()) {
    const t = e.at
    handled++
    kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1)
    if (opts.progress && handled % 1000 === 0 && performance.now() - lastProgress > 5000) {
      lastProgress = performance.now()
      opts.progress(`sim ${Math.round((t - T0) / 1000)}/${Math.round(endMs / 1000)} s simulated, ${eventsDelivered} deliveries, ${Math.round((performance.now() - wallStart) / 1000)} s wall, ${violations.length} violations, events ${JSON.stringify(Object.fromEntries(kinds))}`)
    }
    switch (e.kind) {
      case 'deliver':
        deliver(e.to, e.w, t)
        break
      case 'workload': {
        const w = workloads[e.k]
        const record = { $type: 'commune.scheduler.workload', image: 'busybox', resources: { cpuMillis: 1000, memoryMiB: 512 }, replicas: w.replicas, allowPacking: w.packing, createdAt: iso(t + w.ownerSkew) }
        const written: Written = { repo: ownerDids[w.owner], owner: w.owner, collection: 'commune.scheduler.workload', stored: { uri: w.uri, cid: cid(`${w.uri}v1`), did: ownerDids[w.owner], rkey: w.rkey, record } }
        published.set(w.uri, written)
        publish(null, written, t)
        break
      }
      case 'heartbeat':
        if (ms[e.i].alive) heartbeat(e.i, t)
        push({ at: t + HB_MS, kind: 'heartbeat', i: e.i }) // a dead meshlet's chain resumes when it returns
        break
      case 'eval':
        ms[e.i].pending.delete(e.uri)
        evaluate(e.i, e.uri, t)
        break
      case 'timer':
        if (ms[e.i].timers.get(e.uri) === t) {
          ms[e.i].timers.delete(e.uri)
          evaluate(e.i, e.uri, t)
        }
        break
      case 'finish': {
        const m = ms[e.i]
        const p = m.procs.get(e.key)
        if (!m.alive || !p || p.token !== e.token) break
        stopProc(m, e.key)
        const prev = m.view.statuses.get(`at://${m.did}/commune.scheduler.workloadStatus/${statusRecordKey(p.uri, p.replica)}`)?.record
        if (!prev) break
        putStatus(e.i, prev.workload, p.replica, 'succeeded', t, { exitCode: 0, cpuMillis: 1000, startedAt: prev.startedAt, finishedAt: iso(t + m.skew) })
        countCommit(p.uri)
        const done = completions.get(p.uri) ?? new Set<string>()
        const id = `${m.did}#${p.replica}`
        if (done.has(id)) violate(`replica ${id} of ${p.uri} finished twice`)
        done.add(id)
        completions.set(p.uri, done)
        schedule(e.i, p.uri, t)
        roomFreed(e.i, t)
        break
      }
      case 'die': {
        const m = ms[e.i]
        if (!m.alive) break
        deaths++
        m.alive = false
        for (const [key, p] of [...m.procs].sort(([a], [b]) => (a < b ? -1 : 1))) {
          touched.add(p.uri)
          losses++
          lossesPending.set(p.uri, [...(lossesPending.get(p.uri) ?? []), t])
          stopProc(m, key)
        }
        break
      }
      case 'return': {
        const m = ms[e.i]
        if (m.alive) break
        m.alive = true
        m.onlineSince = t
        m.timers.clear()
        m.pending.clear()
        heartbeat(e.i, t)
        replayBacklog(e.i, t)
        // as a daemon does at startup: look at every workload it may run
        for (const uri of [...m.view.workloads.keys()].sort()) evaluate(e.i, uri, t)
        break
      }
      case 'partition':
        partitions++
        for (const i of e.members) ms[i].partitionedUntil = e.until
        push({ at: e.until, kind: 'heal', members: e.members })
        break
      case 'heal':
        for (const i of e.members) if (ms[i].alive) replayBacklog(i, t)
        break
      case 'adversary':
        adversaryActs(e.i, e.uri, t)
        break
    }
  }

  // quiet: whatever is still in flight lands, then every honest view is compared
  const land = (m: Meshlet, w: Written) => {
    if (m.view.put(w.collection, w.stored as never)) readServedWorkload(m, w)
  }
  for (let e = queue.pop(); e; e = queue.pop()) if (e.kind === 'deliver' && ms[e.to].alive) land(ms[e.to], e.w)
  for (const m of ms) if (m.alive) for (const w of m.backlog) land(m, w)
  const end = T0 + endMs
  const settled = { placed: 0, queued: 0, failed: 0, unsettled: 0 }
  let placedReplicas = 0
  let honestCommits = 0
  let overBound = 0
  let overBoundUntouched = 0
  let placementTotal = 0
  for (const w of workloads) {
    const views = new Set<string>()
    let first: Placement | undefined
    for (const i of topo.followers[w.owner]) {
      const m = ms[i]
      if (!m.alive || m.adversary || !topo.covered[m.owner].has(w.owner)) continue
      const p = place(m.view, w.uri, end + m.skew)
      first ??= p
      views.add(JSON.stringify(p && { phase: p.phase, selected: p.selected, placed: p.placed, reason: p.reason, confirmed: p.confirmed }))
    }
    if (views.size > 1) violate(`${views.size} different placements of ${w.uri} after quiet`)
    honestCommits += commits.get(w.uri) ?? 0
    // the workload record itself, then what meshlets wrote to place it
    const n = 1 + (placementRecords.get(w.uri) ?? 0)
    placementTotal += n
    if (n > 1 + 2 * w.replicas) {
      overBound++
      if (!touched.has(w.uri)) overBoundUntouched++
    }
    if (!first) {
      settled.unsettled++
      violate(`${w.uri}: no placement on any honest meshlet`)
      continue
    }
    placedReplicas += first.placed
    if (first.phase === 'placed') settled.placed++
    else if (first.phase === 'queued') settled.queued++
    else if (first.phase === 'failed') settled.failed++
    else {
      settled.unsettled++
      const awaited = first.invited.map((d) => {
        const m = ms.find((x) => x.did === d)
        if (!m) return d
        // what the awaited meshlet itself sees: the first thing to know when one never answers
        const own = m.alive && !m.adversary ? place(m.view, w.uri, end + m.skew) : undefined
        const self = own && (own.selected.some((s) => s.meshlet === d) ? 'selected' : own.invited.includes(d) ? 'invited' : own.whyNot.find((x) => x.meshlet === d)?.reason)
        const seen = own ? `; its view: ${own.phase}, round ${own.round}, itself ${self ?? 'unknown'}` : m.view.workloads.has(w.uri) ? '' : '; has not seen the workload'
        return `meshlet ${m.i}${m.adversary ? ' (adversary)' : ''}${m.alive ? '' : ' (dead)'}${seen}`
      })
      violate(`${w.uri}: still ${first.phase} after quiet, round ${first.round}, awaiting ${awaited.join(', ') || 'nobody'}`)
    }
    if (first.phase === 'placed' && first.placed !== first.wanted) violate(`${w.uri}: placed ${first.placed} of ${first.wanted}`)
    if ((first.phase === 'queued' || first.phase === 'failed') && !first.reason) violate(`${w.uri}: ${first.phase} without a reason`)
    // exactly what the placement gives honest, alive meshlets runs, and nothing else
    const agreed = first.selected.filter((s) => {
      const i = ms.findIndex((m) => m.did === s.meshlet)
      return i >= 0 && ms[i].alive && !ms[i].adversary
    })
    const runs = running.get(w.uri) ?? 0
    const want = agreed.reduce((n, s) => n + s.replicas, 0)
    if (runs !== want) violate(`${w.uri}: ${runs} running, the placement gives ${want}`)
  }
  ;(globalThis as { gc?: () => void }).gc?.()
  const heap = process.memoryUsage().heapUsed
  const sorted = [...replacement].sort((a, b) => a - b)
  const pct = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null)
  return {
    meshlets: opts.meshlets,
    owners: topo.owners,
    workloads: opts.workloads,
    seed: opts.seed,
    simulatedSeconds: endMs / 1000,
    wallSeconds: Math.round((performance.now() - wallStart) / 100) / 10,
    violations: { count: violations.length, first: violations.slice(0, 5) },
    settled,
    commitsPerPlacedReplica: placedReplicas ? Math.round((honestCommits / placedReplicas) * 1000) / 1000 : 0,
    placementRecordsPerWorkload: Math.round((placementTotal / workloads.length) * 1000) / 1000,
    boundPerWorkload: Math.round((workloads.reduce((n, w) => n + 1 + 2 * w.replicas, 0) / workloads.length) * 1000) / 1000,
    placementOverBound: { workloads: overBound, untouchedByLossOrAdversary: overBoundUntouched },
    replacementSeconds: { losses, replaced: replacement.length, p50: pct(0.5), p99: pct(0.99) },
    cpuMicrosPerDeliveredEvent: eventsDelivered ? Math.round((cpuMicros / eventsDelivered) * 10) / 10 : 0,
    heapBytesPerMeshlet: Math.round(heap / opts.meshlets),
    eventsDelivered,
    deaths,
    partitions,
    adversaries: adversaries.size,
  }
}
