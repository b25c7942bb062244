// A commune in simulated time, driving the real pure core: each honest meshlet keeps its
// own view of the records, runs place() and decide() on it with its own (skewed) clock,
// and applies the decision to simulated processes and records. Records reach other
// meshlets per repo in order (as a firehose delivers them), after random delays far
// beyond any grace, sometimes twice, sometimes only after a replay. Meshlets die and
// return, restart, and an adversary writes conflicting answers and forged statuses.
// Seeded and reproducible: the same config gives the same run.
import type { Collection, RecordTypes } from '../../src/records/index.js'
import { decide, type LocalReplica } from '../../src/scheduler/decide.js'
import { statusRecordKey } from '../../src/scheduler/hash.js'
import { place, type Placement } from '../../src/scheduler/placement.js'
import { isEnded, isFinal } from '../../src/scheduler/replica.js'
import { PublicState, type Stored } from '../../src/scheduler/state.js'
import { cid, did, mulberry32, rec, T0 } from './world.js'

export interface SimConfig {
  seed: number
  owners: number
  meshlets: { owner: number; slots: number; lists: number[]; skewMs: number }[]
  workloads: { owner: number; replicas: number; atMs: number; durationMs: number | null; packing: boolean }[]
  /** Largest delivery delay of a record to another meshlet. */
  maxDelayMs: number
  /** Deaths (processes vanish, no heartbeats, no actions) and, optionally, returns. */
  deaths: { meshlet: number; atMs: number; backMs: number | null }[]
  /** Daemon restarts: processes survive, onlineSince moves. */
  restarts: { meshlet: number; atMs: number }[]
  /** A meshlet that writes random, conflicting answers and forged statuses instead of following decide(). */
  adversary: number | null
  /** Active events (arrivals, deaths, adversary) happen before this; then the commune goes quiet. */
  activeMs: number
  endMs: number
}

export interface SimViolation {
  at: number
  what: string
}

export interface SimResult {
  violations: SimViolation[]
  /** Final placements per honest, alive meshlet, per workload (JSON). */
  finals: Map<string, string[]>
  placements: Placement[]
  /** Honest processes running at the end, per workload. */
  running: Map<string, number>
  /** Honest replicas finished, per workload. */
  finished: Map<string, number>
  /** Records written by honest meshlets per workload (bids and statuses). */
  writes: Map<string, number>
  workloads: string[]
  lastWriteAt: number
  rooms: Map<string, number>
  alive: boolean[]
  meshletDids: string[]
  adversaryDid: string | null
}

const HB_MS = 10_000
const STEP_MS = 100

interface Proc {
  uri: string
  replica: number
  finishAt: number | null
}

interface Meshlet {
  did: string
  view: PublicState
  procs: Map<string, Proc>
  alive: boolean
  onlineSince: number
  lastHb: number
  lastVersion: number
  /** Workloads whose records changed since the last evaluation ('*': all). */
  dirty: Set<string>
  wakeAt: number
  bidSeq: number
}

interface Written {
  seq: number
  repo: string
  collection: Collection
  stored: Stored<unknown>
  at: number
}

export function simulate(cfg: SimConfig): SimResult {
  const rand = mulberry32(cfg.seed)
  const owners = Array.from({ length: cfg.owners }, (_, i) => did(`sim-owner-${cfg.seed}-${i}`))
  const ms: Meshlet[] = cfg.meshlets.map((_, i) => ({
    did: did(`sim-meshlet-${cfg.seed}-${i}`),
    view: new PublicState(),
    procs: new Map(),
    alive: true,
    onlineSince: T0 - 120_000,
    lastHb: -Infinity,
    lastVersion: -1,
    dirty: new Set(['*']),
    wakeAt: 0,
    bidSeq: 0,
  }))
  const violations: SimViolation[] = []
  const log: Written[] = []
  // per (repo, destination): when the last record was delivered, so a repo stays in order
  const lastDelivery = new Map<string, number>()
  const inbox: { at: number; to: number; w: Written }[] = []
  const writes = new Map<string, number>()
  let lastWriteAt = T0
  let seq = 0

  const local = (i: number, t: number) => t + cfg.meshlets[i].skewMs
  const deliver = (to: number, w: Written) => {
    if (!ms[to].view.put(w.collection, w.stored as never)) return
    const target = (w.stored.record as { workload?: { uri: string } }).workload?.uri
    ms[to].dirty.add(w.collection === 'commune.scheduler.workload' ? w.stored.uri : (target ?? '*'))
  }
  const iso = (ms: number) => new Date(ms).toISOString()

  const publish = (from: number | null, repo: string, collection: Collection, stored: Stored<unknown>, t: number) => {
    const w: Written = { seq: seq++, repo, collection, stored, at: t }
    log.push(w)
    ms.forEach((m, to) => {
      if (to === from) {
        deliver(to, w)
        return
      }
      const key = `${repo} ${to}`
      let at = t + Math.floor(rand() * cfg.maxDelayMs)
      if (rand() < 0.05) at += cfg.maxDelayMs // lost, recovered by a replay from the cursor
      at = Math.max(at, lastDelivery.get(key) ?? 0)
      lastDelivery.set(key, at)
      inbox.push({ at, to, w })
      if (rand() < 0.05) inbox.push({ at, to, w }) // delivered twice
    })
  }

  // the commune's standing records, known to everyone from the start
  cfg.meshlets.forEach((spec, i) => {
    const m = ms[i]
    const o = owners[spec.owner]
    for (const r of [
      rec('commune.scheduler.meshletOwner', m.did, 'self', { owner: o, createdAt: iso(T0 - 100_000) }),
      rec('commune.scheduler.meshlet', o, m.did, { meshlet: m.did, createdAt: iso(T0 - 100_000) }),
      rec('commune.scheduler.cluster', m.did, 'c', { members: spec.lists.filter((x) => x !== spec.owner).map((x) => owners[x]), createdAt: iso(T0 - 90_000) }),
    ]) {
      for (const x of ms) x.view.put(r.collection, r.stored)
    }
  })

  const heartbeat = (i: number, t: number) => {
    const m = ms[i]
    const total = { cpuMillis: 1000 * cfg.meshlets[i].slots, memoryMiB: 1024 * cfg.meshlets[i].slots }
    const record = { $type: 'commune.scheduler.capacity', total, allocatable: total, drivers: ['docker'], arch: 'amd64', heartbeatSeconds: HB_MS / 1000, onlineSince: iso(local(i, m.onlineSince)), updatedAt: iso(local(i, t)) }
    publish(i, m.did, 'commune.scheduler.capacity', { uri: `at://${m.did}/commune.scheduler.capacity/self`, cid: cid(`${m.did}${t}hb`), did: m.did, rkey: 'self', record }, t)
    m.lastHb = t
  }
  // Every meshlet's capacity is known everywhere before work arrives (a daemon reads its members'
  // records at startup), and heartbeats never lapse in transit: 10 s apart, delays under 16 s, expiry 35 s.
  ms.forEach((_, i) => heartbeat(i, T0 - 20_000))
  ms.forEach((_, i) => heartbeat(i, T0 - 5000))

  const workloads = cfg.workloads.map((w, k) => {
    const owner = owners[w.owner]
    const rkey = `3kwl${String(k).padStart(9, 'a')}`
    return { ...w, uri: `at://${owner}/commune.scheduler.workload/${rkey}`, owner, rkey, published: false }
  })
  const durations = new Map(workloads.map((w) => [w.uri, w.durationMs]))

  const writeOwn = (i: number, collection: Collection, rkey: string, record: RecordTypes[Collection], t: number, uri: string) => {
    const m = ms[i]
    publish(i, m.did, collection, { uri: `at://${m.did}/${collection}/${rkey}`, cid: cid(`${m.did}/${rkey}/${seq}`), did: m.did, rkey, record }, t)
    writes.set(uri, (writes.get(uri) ?? 0) + 1)
    lastWriteAt = t
  }

  const statusOf = (i: number, uri: string, replica: number) =>
    ms[i].view.statuses.get(`at://${ms[i].did}/commune.scheduler.workloadStatus/${statusRecordKey(uri, replica)}`)?.record

  const putStatus = (i: number, ref: { uri: string; cid: string }, replica: number, state: string, t: number, extra: Record<string, unknown> = {}) => {
    const record = { $type: 'commune.scheduler.workloadStatus', workload: ref, replica, round: 0, state, ...extra, updatedAt: iso(local(i, t)) } as RecordTypes['commune.scheduler.workloadStatus']
    writeOwn(i, 'commune.scheduler.workloadStatus', statusRecordKey(ref.uri, replica), record, t, ref.uri)
  }

  const completions = new Map<string, Set<string>>()
  const evaluate = (i: number, t: number) => {
    const m = ms[i]
    const all = new Set([...m.view.workloads.keys(), ...[...m.procs.values()].map((p) => p.uri)])
    const woke = local(i, t) >= m.wakeAt + cfg.meshlets[i].skewMs
    const uris = m.dirty.has('*') || woke ? all : new Set([...m.dirty].filter((u) => all.has(u)))
    m.dirty.clear()
    let next = woke ? Infinity : m.wakeAt
    for (const uri of [...uris].sort()) {
      const now = local(i, t)
      const p = place(m.view, uri, now)
      if (p?.nextDeadline != null) next = Math.min(next, p.nextDeadline - cfg.meshlets[i].skewMs)
      const workload = m.view.workloads.get(uri)
      const replicas = new Map<number, LocalReplica>()
      for (const s of m.view.statusesFor(uri)) if (s.did === m.did) replicas.set(s.record.replica, { replica: s.record.replica, status: s.record, process: 'none' })
      for (const pr of m.procs.values()) if (pr.uri === uri) replicas.set(pr.replica, { ...(replicas.get(pr.replica) ?? { replica: pr.replica }), process: 'running' })
      const held = [...m.view.statuses.values()].filter((s) => s.did === m.did && !isEnded(s.record)).length
      const room = workload ? Math.max(0, Math.min(cfg.meshlets[i].slots - Math.max(held, m.procs.size), workload.record.allowPacking ? workload.record.replicas : 1)) : 0
      const d = decide(p, { did: m.did, room, replicas: [...replicas.values()] })
      if (process.env.SIM_TRACE && (d.answer || d.start.length || d.stop.length || d.cannotRun.length)) {
        console.log(t - T0, i, uri.slice(-3), JSON.stringify(d), JSON.stringify(p && { phase: p.phase, round: p.round, invited: p.invited.map((x) => ms.findIndex((y) => y.did === x)), sel: p.selected.map((x) => [ms.findIndex((y) => y.did === x.meshlet), x.via, x.confirmed, x.round]), cands: p.candidates.map((x) => ms.findIndex((y) => y.did === x.did)), ans: p.answers.map((a) => [ms.findIndex((y) => y.did === a.did), a.round, a.accept]) }))
      }
      if (d.answer && workload) {
        const a = d.answer
        const rkey = `3kb${String(i).padStart(3, 'a')}${String(m.bidSeq++).padStart(7, 'a')}`
        writeOwn(i, 'commune.scheduler.bid', rkey, { $type: 'commune.scheduler.bid', workload: { uri, cid: workload.cid }, round: a.round, score: a.score, ...(a.slots > 1 ? { slots: a.slots } : {}), ...(a.accept ? {} : { decline: true, reason: a.reason }), createdAt: iso(now) } as never, t, uri)
        for (const r of a.scheduled) putStatus(i, { uri, cid: workload.cid }, r, 'scheduled', t, { round: a.round })
      }
      if (d.stop.length) m.dirty.add('*') // room freed
      for (const s of d.stop) {
        m.procs.delete(`${uri}#${s.replica}`)
        const prev = statusOf(i, uri, s.replica)
        if (prev && !isEnded(prev)) putStatus(i, prev.workload, s.replica, s.state, t, { message: s.message, finishedAt: iso(now) })
      }
      for (const c of d.cannotRun) {
        if (workload) putStatus(i, { uri, cid: workload.cid }, c.replica, 'failed', t, { message: c.message, finishedAt: iso(now) })
      }
      for (const r of d.start) {
        if (!workload) continue
        const prev = statusOf(i, uri, r)
        if (prev && isFinal(prev) && prev.workload.cid === workload.cid) violations.push({ at: t, what: `${m.did} restarted finished replica ${r} of ${uri}` })
        const dur = durations.get(uri)
        m.procs.set(`${uri}#${r}`, { uri, replica: r, finishAt: dur == null ? null : t + dur })
        putStatus(i, { uri, cid: workload.cid }, r, 'running', t, { startedAt: iso(now) })
      }
    }
    m.wakeAt = next
    m.lastVersion = m.view.version
  }

  // at most `replicas` honest copies at any moment (finished ones included): the safety invariant
  const checkSafety = (t: number) => {
    for (const w of workloads) {
      if (!w.published) continue
      let n = completions.get(w.uri)?.size ?? 0
      for (let i = 0; i < ms.length; i++) if (i !== cfg.adversary && ms[i].alive) for (const p of ms[i].procs.values()) if (p.uri === w.uri) n++
      if (n > w.replicas) violations.push({ at: t, what: `${n} copies of ${w.uri} (replicas ${w.replicas})` })
    }
  }

  const advRand = mulberry32(cfg.seed ^ 0x5eed)
  for (let t = T0; t <= T0 + cfg.endMs; t += STEP_MS) {
    const active = t <= T0 + cfg.activeMs
    // owners write workloads (their own clock: meshlet 0's skew stands in for theirs)
    for (const w of workloads) {
      if (w.published || t < T0 + w.atMs) continue
      w.published = true
      const record = { $type: 'commune.scheduler.workload', image: 'busybox', resources: { cpuMillis: 1000, memoryMiB: 512 }, replicas: w.replicas, allowPacking: w.packing, createdAt: iso(t - 700) } as RecordTypes['commune.scheduler.workload']
      const stored = { uri: w.uri, cid: cid(`${w.uri}v1`), did: w.owner, rkey: w.rkey, record }
      publish(null, w.owner, 'commune.scheduler.workload', stored, t)
    }
    // deliveries due, each repo's records in the order they were written
    const due = inbox.filter((d) => d.at <= t).sort((a, b) => a.at - b.at || a.w.seq - b.w.seq)
    if (due.length) {
      for (const { to, w } of due) deliver(to, w)
      const left = inbox.filter((d) => d.at > t)
      inbox.length = 0
      inbox.push(...left)
    }
    // deaths, returns, restarts
    for (const d of cfg.deaths) {
      if (t === T0 + Math.floor(d.atMs / STEP_MS) * STEP_MS && ms[d.meshlet].alive) {
        ms[d.meshlet].alive = false
        ms[d.meshlet].procs.clear()
      }
      if (d.backMs !== null && t === T0 + Math.floor(d.backMs / STEP_MS) * STEP_MS && !ms[d.meshlet].alive) {
        ms[d.meshlet].alive = true
        ms[d.meshlet].onlineSince = t
        heartbeat(d.meshlet, t)
      }
    }
    for (const r of cfg.restarts) {
      if (t === T0 + Math.floor(r.atMs / STEP_MS) * STEP_MS && ms[r.meshlet].alive) {
        const m = ms[r.meshlet]
        m.onlineSince = t
        // as the daemon does: re-assert the replicas whose containers survived, then the heartbeat
        for (const p of m.procs.values()) {
          const prev = statusOf(r.meshlet, p.uri, p.replica)
          if (prev) putStatus(r.meshlet, prev.workload, p.replica, 'running', t, { round: prev.round })
        }
        heartbeat(r.meshlet, t)
      }
    }
    // processes that finish
    ms.forEach((m, i) => {
      if (!m.alive) return
      for (const [key, p] of m.procs) {
        if (p.finishAt === null || p.finishAt > t) continue
        m.procs.delete(key)
        const prev = statusOf(i, p.uri, p.replica)
        if (!prev) continue
        putStatus(i, prev.workload, p.replica, 'succeeded', t, { exitCode: 0, cpuMillis: 1000, finishedAt: iso(local(i, t)) })
        m.dirty.add('*') // room freed: queued workloads may take an offer
        const set = completions.get(p.uri) ?? new Set()
        const id = `${m.did}#${p.replica}`
        if (set.has(id)) violations.push({ at: t, what: `replica ${id} of ${p.uri} finished twice` })
        set.add(id)
        completions.set(p.uri, set)
      }
    })
    // the adversary: random answers (often two different ones per round) and forged statuses;
    // when the commune goes quiet it declines everything, so nobody waits on it for ever
    if (cfg.adversary !== null && t === T0 + Math.floor(cfg.activeMs / STEP_MS) * STEP_MS + STEP_MS) {
      const a = cfg.adversary
      for (const w of ms[a].view.workloads.values()) {
        for (let round = 0; round < 20; round++) {
          const rkey = `3ka${String(ms[a].bidSeq++).padStart(10, 'a')}`
          const record = { $type: 'commune.scheduler.bid', workload: { uri: w.uri, cid: w.cid }, round, score: 1, decline: true, createdAt: iso(t) }
          publish(a, ms[a].did, 'commune.scheduler.bid', { uri: `at://${ms[a].did}/commune.scheduler.bid/${rkey}`, cid: cid(`${rkey}${seq}`), did: ms[a].did, rkey, record }, t)
        }
      }
    }
    // and after that it answers like a meshlet that never has room: a decline whenever asked
    if (cfg.adversary !== null && !active && t % 1000 === 0) {
      const a = cfg.adversary
      for (const w of ms[a].view.workloads.values()) {
        const p = place(ms[a].view, w.uri, local(a, t))
        if (!p?.invited.includes(ms[a].did)) continue
        const rkey = `3ka${String(ms[a].bidSeq++).padStart(10, 'a')}`
        const record = { $type: 'commune.scheduler.bid', workload: { uri: w.uri, cid: w.cid }, round: p.round, score: 1, decline: true, createdAt: iso(t) }
        publish(a, ms[a].did, 'commune.scheduler.bid', { uri: `at://${ms[a].did}/commune.scheduler.bid/${rkey}`, cid: cid(`${rkey}${seq}`), did: ms[a].did, rkey, record }, t)
      }
    }
    if (cfg.adversary !== null && active && advRand() < 0.05) {
      const a = cfg.adversary
      const known = [...ms[a].view.workloads.values()]
      if (known.length) {
        const w = known[Math.floor(advRand() * known.length)]
        const rkey = `3ka${String(ms[a].bidSeq++).padStart(10, 'a')}`
        const round = Math.floor(advRand() * 2)
        const record = { $type: 'commune.scheduler.bid', workload: { uri: w.uri, cid: w.cid }, round, score: 999999, ...(advRand() < 0.5 ? { decline: true } : {}), createdAt: iso(T0 + Math.floor(advRand() * (t - T0))) }
        publish(a, ms[a].did, 'commune.scheduler.bid', { uri: `at://${ms[a].did}/commune.scheduler.bid/${rkey}`, cid: cid(`${rkey}${seq}`), did: ms[a].did, rkey, record }, t)
        if (advRand() < 0.3) {
          const st = { $type: 'commune.scheduler.workloadStatus', workload: { uri: w.uri, cid: w.cid }, replica: 0, state: advRand() < 0.5 ? 'running' : 'succeeded', exitCode: 0, updatedAt: iso(t) }
          const srkey = statusRecordKey(w.uri, 0)
          publish(a, ms[a].did, 'commune.scheduler.workloadStatus', { uri: `at://${ms[a].did}/commune.scheduler.workloadStatus/${srkey}`, cid: cid(`${srkey}${seq}`), did: ms[a].did, rkey: srkey, record: st }, t)
        }
      }
    }
    // heartbeats and evaluations
    ms.forEach((m, i) => {
      if (!m.alive) return
      if (t - m.lastHb >= HB_MS) heartbeat(i, t)
      if (i === cfg.adversary) return
      if (m.dirty.size > 0 || local(i, t) >= m.wakeAt + cfg.meshlets[i].skewMs) evaluate(i, t)
    })
    checkSafety(t)
  }

  // the end: every honest alive meshlet's view, once everything written has been delivered
  for (const { to, w } of inbox.sort((a, b) => a.at - b.at || a.w.seq - b.w.seq)) ms[to].view.put(w.collection, w.stored as never)
  const end = T0 + cfg.endMs
  const finals = new Map<string, string[]>()
  const placements: Placement[] = []
  const running = new Map<string, number>()
  const finished = new Map<string, number>()
  const rooms = new Map<string, number>()
  for (const w of workloads) {
    const views: string[] = []
    ms.forEach((m, i) => {
      if (!m.alive || i === cfg.adversary) return
      const p = place(m.view, w.uri, local(i, end))
      if (p) placements.push(p)
      views.push(JSON.stringify(p && { phase: p.phase, selected: p.selected, placed: p.placed, reason: p.reason, confirmed: p.confirmed }))
    })
    finals.set(w.uri, views)
    running.set(w.uri, ms.reduce((n, m, i) => n + (m.alive && i !== cfg.adversary ? [...m.procs.values()].filter((p) => p.uri === w.uri).length : 0), 0))
    finished.set(w.uri, completions.get(w.uri)?.size ?? 0)
  }
  ms.forEach((m, i) => {
    const held = [...m.view.statuses.values()].filter((s) => s.did === m.did && !isEnded(s.record)).length
    rooms.set(m.did, cfg.meshlets[i].slots - Math.max(held, m.procs.size))
  })
  return {
    violations,
    finals,
    placements,
    running,
    finished,
    writes,
    workloads: workloads.map((w) => w.uri),
    lastWriteAt,
    rooms,
    alive: ms.map((m) => m.alive),
    meshletDids: ms.map((m) => m.did),
    adversaryDid: cfg.adversary === null ? null : ms[cfg.adversary].did,
  }
}


