// Share grants and trust tiers in the pure core: each rule with its named reason, the
// image allowlist's parser and matcher as properties, and what a meshlet does about a
// revoked grant (decide).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ShareGrantRecord, WorkloadRecord } from '../../src/records/index.js'
import { decide, type LocalReplica } from '../../src/scheduler/decide.js'
import {
  DEFAULT_DRAIN_GRACE_SECONDS,
  GRANT_LAPSE_MS,
  eligibility,
  grantLimitRefusal,
  imageAllowed,
  jobTimeoutSeconds,
  parseImageRef,
  revocation,
  tierAtMost,
  tierOf,
  type Tier,
} from '../../src/scheduler/grants.js'
import { place } from '../../src/scheduler/placement.js'
import type { PublicState, Stored } from '../../src/scheduler/state.js'
import { did, rec, stateOf, T0, type Rec } from './world.js'

const iso = (ms: number) => new Date(ms).toISOString()
const DAY = 24 * 3600 * 1000

// ann lends her meshlet; ben is a cluster member of ann's; rex is a recipient with no meshlet
const ANN = did('grants-ann')
const BEN = did('grants-ben')
const REX = did('grants-rex')
const ANN_M = did('grants-ann-mesh')
const BEN_M = did('grants-ben-mesh')

function commune(over: { annOnlineSince?: number } = {}): Rec[] {
  const out: Rec[] = []
  for (const [o, m, other] of [
    [ANN, ANN_M, BEN],
    [BEN, BEN_M, ANN],
  ]) {
    out.push(rec('commune.scheduler.meshletOwner', m, 'self', { owner: o, createdAt: iso(T0 - 1e5) }))
    out.push(rec('commune.scheduler.meshlet', o, m, { meshlet: m, createdAt: iso(T0 - 1e5) }))
    out.push(rec('commune.scheduler.cluster', m, 'c', { members: [other], createdAt: iso(T0 - 1e5) }))
    const total = { cpuMillis: 8000, memoryMiB: 16384, storageMiB: 100_000, gpus: 2 }
    out.push(
      rec('commune.scheduler.capacity', m, 'self', {
        total,
        allocatable: total,
        gpus: [
          { index: 0, model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
          { index: 1, model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
        ],
        drivers: ['docker'],
        arch: 'amd64',
        heartbeatSeconds: 60,
        ...(m === ANN_M && over.annOnlineSince !== undefined ? { onlineSince: iso(over.annOnlineSince) } : {}),
        updatedAt: iso(T0 - 1000),
      }),
    )
  }
  return out
}

let n = 0
const key = () => `3kg${String(n++).padStart(10, 'a')}`.slice(0, 13)

function grant(over: Partial<ShareGrantRecord> = {}, createdAt = T0 - 1000): Rec {
  return rec('commune.scheduler.shareGrant', ANN, key(), { meshlet: ANN_M, recipient: REX, tier: 'a', createdAt: iso(createdAt), ...over })
}

function workload(over: Partial<WorkloadRecord> = {}, owner = REX, rkey = '3kworkloadaaa'): Rec {
  return rec('commune.scheduler.workload', owner, rkey, { image: 'busybox', resources: { cpuMillis: 500, memoryMiB: 256 }, replicas: 1, createdAt: iso(T0), ...over })
}

function status(w: Rec, meshlet: string, state: string, at: number, over: Record<string, unknown> = {}): Rec {
  return rec('commune.scheduler.workloadStatus', meshlet, `st-${w.stored.rkey}-0`, {
    workload: { uri: w.stored.uri, cid: w.stored.cid },
    replica: 0,
    state,
    updatedAt: iso(at),
    ...over,
  })
}

/** Where ann's meshlet stands for a workload: a candidate (via, grant) or its reason. */
function annFor(w: Rec, ...recs: Rec[][]): string {
  const p = place(stateOf([...commune(), ...recs.flat(), w]), w.stored.uri, T0 + 1000)!
  const c = p.candidates.find((x) => x.did === ANN_M)
  return c ? `candidate:${c.via}` : p.whyNot.find((x) => x.meshlet === ANN_M)!.reason
}

describe('trust tiers', () => {
  it('a workload asks for tier a unless it says otherwise; an unknown tier is no tier', () => {
    expect(tierOf({})).toBe('a')
    expect(tierOf({ tier: 'c' })).toBe('c')
    expect(tierOf({ tier: 'z' })).toBeUndefined()
    expect(tierAtMost('a', 'b')).toBe(true)
    expect(tierAtMost('c', 'b')).toBe(false)
  })

  it('ceiling: the owner’s own meshlet c, a cluster member b, a grant its tier; above it a meshlet is not a candidate, with the reason', () => {
    // ben (cluster member of ann) asks ann's meshlet
    expect(annFor(workload({ tier: 'b' }, BEN))).toBe('candidate:cluster')
    expect(annFor(workload({ tier: 'c' }, BEN))).toBe('tier:above-ceiling')
    // ann's own work at any tier
    expect(annFor(workload({ tier: 'c' }, ANN))).toBe('candidate:own')
    // rex under a tier-a grant
    expect(annFor(workload({}), [grant()])).toBe('candidate:grant')
    expect(annFor(workload({ tier: 'b' }), [grant()])).toBe('tier:above-ceiling')
    expect(annFor(workload({ tier: 'c' }), [grant({ tier: 'b' })])).toBe('tier:above-ceiling')
    expect(annFor(workload({ tier: 'c' }), [grant({ tier: 'c' })])).toBe('candidate:grant')
    // a tier nobody knows runs nowhere, not even on the owner's own meshlet
    expect(annFor(workload({ tier: 'x' }, ANN))).toBe('tier:unknown')
    // a grant with a tier nobody knows grants the least
    expect(annFor(workload({ tier: 'b' }), [grant({ tier: 'q' })])).toBe('tier:above-ceiling')
    // a cluster member may go above b only with a grant that allows it
    expect(annFor(workload({ tier: 'c' }, BEN), [grant({ recipient: BEN, tier: 'c' })])).toBe('candidate:grant')
  })

  it('property: a meshlet is a candidate exactly when the tier asked is at most its ceiling for that owner', () => {
    const tiers: Tier[] = ['a', 'b', 'c']
    fc.assert(
      fc.property(fc.constantFrom(...tiers), fc.constantFrom('own', 'cluster', ...tiers.map((t) => `grant-${t}`)), (asked, source) => {
        const owner = source === 'own' ? ANN : source === 'cluster' ? BEN : REX
        const grants = source.startsWith('grant-') ? [grant({ tier: source.slice(6) })] : []
        const ceiling: Tier = source === 'own' ? 'c' : source === 'cluster' ? 'b' : (source.slice(6) as Tier)
        const e = eligibility(stateOf([...commune(), ...grants]), workload({ tier: asked }, owner).stored as Stored<WorkloadRecord>, ANN_M, ANN)
        expect(e.eligible).toBe(tierAtMost(asked, ceiling))
        // the tier it runs at is the one asked, then always allowed
        if (e.eligible) expect(e.tier).toBe(asked)
        else expect(e).toEqual({ eligible: false, reason: 'tier:above-ceiling' })
      }),
    )
  })
})

describe('image allowlist', () => {
  it('exact repositories, tags and digests; never a longer name', () => {
    const digest = `sha256:${'ab'.repeat(32)}`
    const ok = (image: string, allowed: string[]) => imageAllowed(image, allowed)
    expect(ok('busybox', ['busybox'])).toBe(true)
    expect(ok('docker.io/library/busybox:1.36', ['busybox'])).toBe(true)
    expect(ok('library/busybox', ['docker.io/library/busybox'])).toBe(true)
    expect(ok('index.docker.io/library/busybox', ['busybox'])).toBe(true)
    expect(ok(`busybox@${digest}`, ['busybox'])).toBe(true)
    expect(ok('busyboxevil', ['busybox'])).toBe(false)
    expect(ok('busybox/evil', ['busybox'])).toBe(false)
    expect(ok('evil/busybox', ['busybox'])).toBe(false)
    expect(ok('ghcr.io/library/busybox', ['busybox'])).toBe(false)
    // a tag entry: that tag (no tag means latest), nothing else
    expect(ok('busybox', ['busybox:latest'])).toBe(true)
    expect(ok('busybox:1.36', ['busybox:1.36'])).toBe(true)
    expect(ok('busybox:1.37', ['busybox:1.36'])).toBe(false)
    expect(ok(`busybox@${digest}`, ['busybox:latest'])).toBe(false)
    // a digest entry: that digest only
    expect(ok(`busybox@${digest}`, [`docker.io/library/busybox@${digest}`])).toBe(true)
    expect(ok(`busybox:1.36@${digest.toUpperCase().replace('SHA256', 'sha256')}`, [`busybox@${digest}`])).toBe(true)
    expect(ok('busybox:1.36', [`busybox@${digest}`])).toBe(false)
    expect(ok(`busybox@sha256:${'cd'.repeat(32)}`, [`busybox@${digest}`])).toBe(false)
    // registries with ports, localhost
    expect(ok('localhost:5000/tools/x:1', ['localhost:5000/tools/x'])).toBe(true)
    expect(ok('localhost:5000/tools/x', ['localhost/tools/x'])).toBe(false)
    // an empty list admits anything; invalid references match nothing
    expect(ok('anything/at:all', [])).toBe(true)
    expect(ok('busybox', ['ghcr.io/'])).toBe(false)
    expect(ok('BusyBox', ['busybox'])).toBe(false)
    expect(ok('busybox', ['Busybox'])).toBe(false)
    expect(parseImageRef('busybox@sha256:short')).toBeUndefined()
  })

  const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,6})?$/)
  const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}$/)
  const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`)
  const registry = fc.constantFrom('', 'docker.io/', 'ghcr.io/', 'registry.example.org:5000/', 'localhost/')
  const repo = fc.tuple(registry, fc.array(component, { minLength: 1, maxLength: 3 })).map(([r, parts]) => `${r}${parts.join('/')}`)
  const ref = fc.record({ repo, tag: fc.option(tag, { nil: undefined }), digest: fc.option(digest, { nil: undefined }) })
  const text = (r: { repo: string; tag?: string; digest?: string }) => `${r.repo}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`

  it('property: a reference parses, and its spellings of Docker Hub name one repository', () => {
    fc.assert(
      fc.property(ref, (r) => {
        const parsed = parseImageRef(text(r))
        expect(parsed).toBeDefined()
        expect(parsed!.tag).toBe(r.tag)
        expect(parsed!.digest).toBe(r.digest)
      }),
    )
    fc.assert(
      fc.property(component, (name) => {
        const forms = [name, `library/${name}`, `docker.io/library/${name}`, `index.docker.io/library/${name}`].map((f) => parseImageRef(f)?.repository)
        expect(new Set(forms)).toEqual(new Set([`docker.io/library/${name}`]))
      }),
    )
  })

  it('property: a bare repository admits every tag and digest of it, and no other repository', () => {
    fc.assert(
      fc.property(ref, repo, (r, other) => {
        expect(imageAllowed(text(r), [r.repo])).toBe(true)
        const same = parseImageRef(other)!.repository === parseImageRef(r.repo)!.repository
        expect(imageAllowed(text({ ...r, repo: other }), [r.repo])).toBe(same)
      }),
    )
  })

  it('property: a name that merely starts with an allowed one is never admitted', () => {
    fc.assert(
      fc.property(repo, fc.constantFrom('evil', '-evil', '.x', '_y', '/evil', '/a/b', '0'), (r, suffix) => {
        fc.pre(parseImageRef(`${r}${suffix}`) !== undefined)
        expect(imageAllowed(`${r}${suffix}`, [r])).toBe(false)
        expect(imageAllowed(`${r}${suffix}:latest`, [r])).toBe(false)
      }),
    )
  })

  it('property: a tag or digest entry admits exactly that tag or digest', () => {
    fc.assert(
      fc.property(repo, tag, tag, digest, digest, (r, t1, t2, d1, d2) => {
        expect(imageAllowed(`${r}:${t2}`, [`${r}:${t1}`])).toBe(t1 === t2)
        expect(imageAllowed(`${r}@${d2}`, [`${r}@${d1}`])).toBe(d1 === d2)
        // a digest entry is not satisfied by a tag, nor a tag entry by a bare digest
        expect(imageAllowed(`${r}:${t1}`, [`${r}@${d1}`])).toBe(false)
        expect(imageAllowed(`${r}@${d1}`, [`${r}:${t1}`])).toBe(false)
      }),
    )
  })

  it('a grant’s allowlist decides candidacy, with the reason', () => {
    expect(annFor(workload({ image: 'busybox:1.36' }), [grant({ allowedImages: ['docker.io/library/busybox'] })])).toBe('candidate:grant')
    expect(annFor(workload({ image: 'busyboxevil' }), [grant({ allowedImages: ['busybox'] })])).toBe('grant:image-not-allowed')
    expect(annFor(workload({ image: 'busybox' }), [grant({ allowedImages: ['ghcr.io/'] })])).toBe('grant:image-not-allowed')
  })
})

describe('grant terms', () => {
  it('per-job caps: asking for more than a cap is not a candidate, per resource', () => {
    const caps = { cpuMillis: 1000, memoryMiB: 512, storageMiB: 100, gpus: 1 }
    const g = [grant({ caps })]
    expect(annFor(workload({ resources: { cpuMillis: 1000, memoryMiB: 512, storageMiB: 100, gpus: 1 } }), g)).toBe('candidate:grant')
    expect(annFor(workload({ resources: { cpuMillis: 1001, memoryMiB: 256 } }), g)).toBe('grant:over-cap:cpu')
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 513 } }), g)).toBe('grant:over-cap:memory')
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 256, storageMiB: 101 } }), g)).toBe('grant:over-cap:storage')
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 256, gpus: 2 } }), g)).toBe('grant:over-cap:gpus')
    // caps without storage or gpus limit only cpu and memory
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 256, gpus: 2 } }), [grant({ caps: { cpuMillis: 1000, memoryMiB: 512 } })])).toBe('candidate:grant')
  })

  it('capabilities, when listed, bound what the work may use', () => {
    const g = [grant({ tier: 'b', capabilities: ['cpu'] })]
    expect(annFor(workload({}), g)).toBe('candidate:grant')
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 256, gpus: 1 } }), g)).toBe('grant:capability:gpu')
    expect(annFor(workload({ resources: { cpuMillis: 500, memoryMiB: 256, storageMiB: 10 } }), g)).toBe('grant:capability:storage')
    expect(annFor(workload({ tier: 'b' }), g)).toBe('grant:capability:network')
    expect(annFor(workload({ tier: 'b' }), [grant({ tier: 'b', capabilities: ['cpu', 'network'] })])).toBe('candidate:grant')
  })

  it('expiry and revocation are judged at the workload’s createdAt', () => {
    expect(annFor(workload({}), [grant({ expiresAt: iso(T0) })])).toBe('grant:expired')
    expect(annFor(workload({}), [grant({ expiresAt: iso(T0 + 1) })])).toBe('candidate:grant')
    expect(annFor(workload({}), [grant({ revokedAt: iso(T0 - 1) })])).toBe('grant:revoked')
    // revoked after the workload was made: still ranked (it drains or declines by its own answer)
    expect(annFor(workload({}), [grant({ revokedAt: iso(T0 + 1) })])).toBe('candidate:grant')
  })

  it('30 days without use, a grant lapses; a status of the meshlet for the recipient’s work keeps it alive', () => {
    const old = T0 - 31 * DAY
    expect(annFor(workload({}), [grant({}, old)])).toBe('grant:lapsed')
    expect(annFor(workload({}), [grant({}, T0 - 29 * DAY)])).toBe('candidate:grant')
    const earlier = workload({ createdAt: iso(T0 - 10 * DAY) }, REX, '3kearlieraaaa')
    const used = status(earlier, ANN_M, 'succeeded', T0 - 10 * DAY + 60_000, { exitCode: 0 })
    expect(annFor(workload({}), [grant({}, old), earlier, used])).toBe('candidate:grant')
    // a status for someone else's work, or written by another meshlet, is no use of this grant
    const bens = workload({ createdAt: iso(T0 - 10 * DAY) }, BEN, '3kbensaaaaaaa')
    expect(annFor(workload({}), [grant({}, old), bens, status(bens, ANN_M, 'succeeded', T0 - 10 * DAY, { exitCode: 0 })])).toBe('grant:lapsed')
    expect(annFor(workload({}), [grant({}, old), earlier, status(earlier, BEN_M, 'succeeded', T0 - 10 * DAY, { exitCode: 0 })])).toBe('grant:lapsed')
    expect(GRANT_LAPSE_MS).toBe(30 * DAY)
  })

  it('pause: no new work (not a candidate), but a replica it holds keeps its place', () => {
    const g = grant({ paused: true })
    const w = workload({})
    expect(annFor(w, [g])).toBe('grant:paused')
    // ann's meshlet runs the replica (a running status since it came online): it holds it
    const recs = [...commune({ annOnlineSince: T0 - 5000 }), g, w, offer(w, ANN_M), status(w, ANN_M, 'running', T0 + 500)]
    const p = place(stateOf(recs), w.stored.uri, T0 + 1000)!
    expect(p.selected).toEqual([expect.objectContaining({ meshlet: ANN_M, via: 'held', replicas: 1 })])
    expect(p.candidates.find((c) => c.did === ANN_M)).toMatchObject({ via: 'grant', grant: g.stored.uri })
  })

  it('with several grants, one in force wins over a paused or revoked one; none usable reports the newest grant’s reason', () => {
    expect(annFor(workload({}), [grant({ paused: true }), grant({})])).toBe('candidate:grant')
    expect(annFor(workload({}), [grant({ revokedAt: iso(T0 - 5) }, T0 - 2000), grant({ expiresAt: iso(T0 - 1) }, T0 - 1000)])).toBe('grant:expired')
    const s = stateOf([...commune(), grant({ revokedAt: iso(T0 + 5) }, T0 - 500), grant({ maxConcurrentJobs: 3 }, T0 - 2000)])
    const e = eligibility(s, workload({}).stored as Stored<WorkloadRecord>, ANN_M, ANN)
    expect(e.eligible && e.via === 'grant' && e.grant.record.maxConcurrentJobs).toBe(3)
  })

  it('a grant signed by someone other than the meshlet’s owner, or for another meshlet, grants nothing', () => {
    const forged = rec('commune.scheduler.shareGrant', REX, key(), { meshlet: ANN_M, recipient: REX, tier: 'c', createdAt: iso(T0 - 1000) })
    expect(annFor(workload({}), [forged])).toBe('not-a-member')
    expect(annFor(workload({}), [grant({ meshlet: BEN_M })])).toBe('not-a-member')
  })

  it('property: with grants in play, the same records in any order give byte-identical placements', () => {
    const grantArb = fc.record({
      tier: fc.constantFrom('a', 'b', 'c'),
      paused: fc.boolean(),
      revoked: fc.option(fc.integer({ min: -5000, max: 5000 }), { nil: undefined }),
      expires: fc.option(fc.integer({ min: -5000, max: 5000 }), { nil: undefined }),
      capCpu: fc.option(fc.constantFrom(250, 500, 1000), { nil: undefined }),
      images: fc.option(fc.constantFrom('busybox', 'busybox:1', 'busyboxevil', 'ghcr.io/x/y'), { nil: undefined }),
      age: fc.constantFrom(1000, 29 * DAY, 31 * DAY),
    })
    fc.assert(
      fc.property(fc.array(grantArb, { maxLength: 4 }), fc.constantFrom('a', 'b', 'c'), fc.boolean(), fc.nat(1000), (gs, tier, running, seed) => {
        const grants = gs.map((g) =>
          grant(
            {
              tier: g.tier,
              paused: g.paused,
              ...(g.revoked !== undefined ? { revokedAt: iso(T0 + g.revoked) } : {}),
              ...(g.expires !== undefined ? { expiresAt: iso(T0 + g.expires) } : {}),
              ...(g.capCpu ? { caps: { cpuMillis: g.capCpu, memoryMiB: 1024 } } : {}),
              ...(g.images ? { allowedImages: [g.images] } : {}),
            },
            T0 - g.age,
          ),
        )
        const w = workload({ tier })
        const recs = [...commune({ annOnlineSince: T0 - 5000 }), ...grants, w, offer(w, ANN_M), ...(running ? [status(w, ANN_M, 'running', T0 + 500)] : [])]
        const orders = [recs, [...recs].reverse(), [...recs].sort((a, b) => ((a.stored.cid.charCodeAt(seed % 20) ?? 0) - (b.stored.cid.charCodeAt(seed % 20) ?? 0)))]
        const outs = orders.map((o) => JSON.stringify(place(stateOf(o), w.stored.uri, T0 + 1000)))
        expect(new Set(outs).size).toBe(1)
      }),
      { numRuns: 200 },
    )
  })
})

function offer(w: Rec, meshlet: string): Rec {
  return rec('commune.scheduler.bid', meshlet, key(), { workload: { uri: w.stored.uri, cid: w.stored.cid }, round: 0, score: 1, createdAt: iso(T0 + 100) })
}

describe('the meshlet’s own answers under a grant', () => {
  it('maxConcurrentJobs defaults to 1; the reason names the limit', () => {
    expect(grantLimitRefusal({}, 0)).toBeUndefined()
    expect(grantLimitRefusal({}, 1)).toBe('grant limit: 1 concurrent job')
    expect(grantLimitRefusal({ maxConcurrentJobs: 3 }, 2)).toBeUndefined()
    expect(grantLimitRefusal({ maxConcurrentJobs: 3 }, 3)).toBe('grant limit: 3 concurrent jobs')
  })

  it('revocation: kill at revokedAt; drain after the grace (per grant, else the meshlet’s default, else 60 s for a and 300 s for b and c)', () => {
    const base: Partial<ShareGrantRecord> = {}
    expect(revocation(base, 'b')).toBeUndefined()
    expect(revocation({ ...base, revokedAt: iso(T0), onRevoke: 'kill' }, 'b')).toEqual({ at: T0, stopAt: T0, message: 'share grant revoked (kill)' })
    expect(revocation({ ...base, revokedAt: iso(T0) }, 'a')).toEqual({ at: T0, stopAt: T0 + 60_000, message: 'share grant revoked; drain grace of 60 s over' })
    expect(revocation({ ...base, revokedAt: iso(T0) }, 'c')!.stopAt).toBe(T0 + 300_000)
    expect(revocation({ ...base, revokedAt: iso(T0) }, 'a', { a: 5 })!.stopAt).toBe(T0 + 5000)
    expect(revocation({ ...base, revokedAt: iso(T0), drainGraceSeconds: 2 }, 'a', { a: 5 })).toMatchObject({ stopAt: T0 + 2000, message: 'share grant revoked; drain grace of 2 s over' })
    expect(DEFAULT_DRAIN_GRACE_SECONDS).toEqual({ a: 60, b: 300, c: 300 })
  })

  it('wall time: the workload’s own timeout, capped by the grant’s maxJobSeconds', () => {
    expect(jobTimeoutSeconds({}, undefined)).toBeUndefined()
    expect(jobTimeoutSeconds({ timeoutSeconds: 100 }, { maxJobSeconds: 30 })).toBe(30)
    expect(jobTimeoutSeconds({ timeoutSeconds: 10 }, { maxJobSeconds: 30 })).toBe(10)
    expect(jobTimeoutSeconds({}, { maxJobSeconds: 30 })).toBe(30)
  })

  const w = workload({})
  const running = (replica = 0): LocalReplica => ({
    replica,
    process: 'running',
    status: { $type: 'commune.scheduler.workloadStatus', workload: { uri: w.stored.uri, cid: w.stored.cid }, replica, round: 0, state: 'running', updatedAt: iso(T0 + 500) },
  })
  const scheduled: LocalReplica = { ...running(), process: 'none', status: { ...running().status!, state: 'scheduled' } }
  const placed = (s: PublicState) => place(s, w.stored.uri, T0 + 1000)

  it('decide: under a revoked grant a running replica drains, then stops for good with the reason', () => {
    const s = stateOf([...commune({ annOnlineSince: T0 - 5000 }), grant({ revokedAt: iso(T0 + 800) }), w, offer(w, ANN_M), status(w, ANN_M, 'running', T0 + 500)])
    const p = placed(s)
    expect(p?.selected[0]).toMatchObject({ meshlet: ANN_M, via: 'held' })
    const draining = decide(p, { did: ANN_M, room: 0, refuse: 'share grant revoked', revoked: { stop: false, message: 'm' }, replicas: [running()] })
    expect(draining).toEqual({ start: [], stop: [], cannotRun: [] })
    const over = decide(p, { did: ANN_M, room: 0, refuse: 'share grant revoked', revoked: { stop: true, message: 'share grant revoked; drain grace of 60 s over' }, replicas: [running()] })
    expect(over.stop).toEqual([{ replica: 0, state: 'stopped', message: 'share grant revoked; drain grace of 60 s over' }])
  })

  it('decide: a replica selected under a revoked grant does not start; it is reported could-not-run so it can move', () => {
    const s = stateOf([...commune({ annOnlineSince: T0 - 5000 }), grant({ revokedAt: iso(T0 + 800) }), w, offer(w, ANN_M)])
    const p = placed(s)!
    expect(p.confirmed).toContain(ANN_M)
    const d = decide(p, { did: ANN_M, room: 1, refuse: 'share grant revoked', revoked: { stop: false, message: 'share grant revoked (kill)' }, replicas: [scheduled] })
    expect(d.start).toEqual([])
    expect(d.cannotRun).toEqual([{ replica: 0, message: 'share grant revoked (kill) before it started' }])
  })

  it('decide: a deleted grant (the engine remembers it as revoked with kill) stops what runs, stopped not yielded', () => {
    // without the grant ann's meshlet is no candidate at all: the placement alone would yield
    const s = stateOf([...commune({ annOnlineSince: T0 - 5000 }), w, offer(w, ANN_M), status(w, ANN_M, 'running', T0 + 500)])
    const p = placed(s)
    expect(decide(p, { did: ANN_M, room: 0, replicas: [running()] }).stop[0].state).toBe('yielded')
    const d = decide(p, { did: ANN_M, room: 0, revoked: { stop: true, message: 'share grant revoked (kill)' }, replicas: [running()] })
    expect(d.stop).toEqual([{ replica: 0, state: 'stopped', message: 'share grant revoked (kill)' }])
  })

  it('finality: a replica stopped by a revocation counts as finished and is not placed again', () => {
    const stopped = status(w, ANN_M, 'stopped', T0 + 900, { message: 'share grant revoked (kill)', finishedAt: iso(T0 + 900) })
    // ben's meshlet would take rex's work too (a grant of its own)
    const bens = rec('commune.scheduler.shareGrant', BEN, key(), { meshlet: BEN_M, recipient: REX, tier: 'a', createdAt: iso(T0 - 1000) })
    const s = stateOf([...commune({ annOnlineSince: T0 - 5000 }), grant({ revokedAt: iso(T0 + 800), onRevoke: 'kill' }), bens, w, offer(w, ANN_M), stopped])
    const p = placed(s)!
    expect(p).toMatchObject({ phase: 'placed', placed: 1, invited: [] })
    expect(p.selected).toEqual([expect.objectContaining({ meshlet: ANN_M, via: 'finished', finished: 1 })])
  })
})
