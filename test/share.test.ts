// `meshlet share ...` and `meshlet drain|undrain`, run as child processes against a real
// PLC + PDS (and, for drain, a real meshlet daemon). Every record the CLI writes is read
// back from its repo through the validating reader.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { grantState, lastUse } from '../src/cli/grant-state.js'
import { COLLECTIONS, type ShareGrantRecord, type WorkloadStatusRecord } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { GRANT_LAPSE_MS } from '../src/scheduler/grants.js'
import type { Stored } from '../src/scheduler/state.js'
import { waitFor } from '../src/util/time.js'
import { cli, ownerEnvOf, type CliResult } from './helpers/cli.js'
import { addMember, setCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

let net: DevNetwork
let reader: RepoReader
let alice: Member // lends her meshlet
let carol: Member // another owner, in alice's meshlet's cluster
let bob: DevAccount // a recipient with no meshlet
let dave: DevAccount // a stranger: alice knows him only when told (--from)

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  ;[alice, carol] = await Promise.all([addMember(net, 'alice'), addMember(net, 'carol')])
  ;[bob, dave] = await Promise.all([net.createAccount('bob'), net.createAccount('dave')])
  await setCluster(alice, 'garden', [carol])
}, 120_000)
afterAll(async () => {
  await net?.close()
})

const as = (who: DevAccount | Member) => ownerEnvOf('owner' in who ? who.owner : who, net.plcUrl)
/** Runs a command with --json and returns its parsed output; fails the test with stderr otherwise. */
async function json<T = Record<string, any>>(who: DevAccount | Member, args: string[]): Promise<T> {
  const r = await cli([...args, '--json'], as(who), 120_000)
  expect(r.code, `meshlet ${args.join(' ')}: ${r.stderr}`).toBe(0)
  return JSON.parse(r.stdout) as T
}
/** A failure: exit 1 and one line on stderr matching `message`. */
async function fails(who: DevAccount | Member, args: string[], message: RegExp): Promise<CliResult> {
  const r = await cli(args, as(who), 120_000)
  expect(r.code, `meshlet ${args.join(' ')}: ${r.stdout}`).toBe(1)
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1)
  expect(r.stderr).toMatch(message)
  return r
}
const grantRecord = async (uri: string): Promise<ShareGrantRecord> => {
  const rkey = uri.split('/').pop()!
  const res = await reader.get(alice.owner.did, COLLECTIONS.shareGrant, rkey)
  if (!res.ok) throw new Error(res.detail)
  return res.value.record
}
const count = async (did: string, collection: typeof COLLECTIONS.shareGrant | typeof COLLECTIONS.shareDenial) => (await reader.list(did, collection)).records.length

describe('meshlet share, drain, undrain', () => {
  it('has --help, and refuses a missing or unknown subcommand and misplaced flags with one line', async () => {
    for (const cmd of ['share', 'drain', 'undrain']) {
      const r = await cli([cmd, '--help'])
      expect(r.code, cmd).toBe(0)
      expect(r.stdout).toContain(`Usage: meshlet ${cmd}`)
    }
    const help = await cli(['share', 'grant', '--help'])
    for (const sub of ['grant', 'list', 'pause', 'resume', 'revoke', 'request', 'requests', 'approve', 'deny']) expect(help.stdout).toContain(`  ${sub}`)
    await fails(bob, ['share'], /missing subcommand/)
    await fails(bob, ['share', 'lend'], /unknown subcommand 'lend'/)
    await fails(bob, ['share', 'list', '--tier', 'a'], /share list does not take --tier/)
    await fails(bob, ['share', 'requests', '--mine', '--from', alice.owner.did], /--mine reads your own requests/)
  }, 120_000)

  it('grant → list → pause → resume → revoke: the records say so, and each state shows', async () => {
    const mesh = alice.meshlet.did
    // a handle resolves to the DID; every limit lands in the record
    const full = await json(alice, [
      'share', 'grant', '--meshlet', mesh, '--to', bob.handle, '--tier', 'b',
      '--image', 'meshlet-test/busybox', '--image', 'alpine:3.20', '--max-jobs', '2',
      '--cpu', '0.5', '--memory', '256Mi', '--storage', '1Gi', '--max-job-seconds', '600',
      '--min-free-disk', '1024', '--expires', '7d', '--on-revoke', 'drain', '--drain-grace', '30',
    ])
    expect(full.state).toBe('active')
    const before = Date.now()
    const rec = await grantRecord(full.uri)
    expect(rec).toMatchObject({
      meshlet: mesh,
      recipient: bob.did,
      tier: 'b',
      allowedImages: ['meshlet-test/busybox', 'alpine:3.20'],
      maxConcurrentJobs: 2,
      caps: { cpuMillis: 500, memoryMiB: 256, storageMiB: 1024 },
      maxJobSeconds: 600,
      minFreeDiskMiB: 1024,
      onRevoke: 'drain',
      drainGraceSeconds: 30,
    })
    expect(rec.paused).toBeUndefined()
    expect(rec.revokedAt).toBeUndefined()
    const expires = Date.parse(rec.expiresAt!) - before
    expect(expires).toBeGreaterThan(6 * 86_400_000)
    expect(expires).toBeLessThanOrEqual(7 * 86_400_000)

    // the defaults: one job at a time, no caps, no expiry
    const plain = await json(alice, ['share', 'grant', '--meshlet', mesh, '--to', bob.did, '--tier', 'a'])
    const plainRec = await grantRecord(plain.uri)
    expect(plainRec).toMatchObject({ meshlet: mesh, recipient: bob.did, tier: 'a', maxConcurrentJobs: 1 })
    for (const k of ['caps', 'expiresAt', 'allowedImages', 'onRevoke', 'request']) expect(plainRec[k], k).toBeUndefined()

    const listed = await json(alice, ['share', 'list'])
    expect(listed.given.map((g: { uri: string; state: string }) => [g.uri, g.state]).sort()).toEqual([[full.uri, 'active'], [plain.uri, 'active']].sort())
    expect(listed.received).toEqual([])
    // bob has no meshlet and has asked no one: he knows no lender until told
    expect((await json(bob, ['share', 'list'])).received).toEqual([])
    const bobs = await json(bob, ['share', 'list', '--from', alice.owner.handle])
    expect(bobs.received.map((g: { uri: string; owner: string }) => [g.uri, g.owner]).sort()).toEqual([[full.uri, alice.owner.did], [plain.uri, alice.owner.did]].sort())

    // pause by record key, resume by URI
    const rkey = plain.uri.split('/').pop()
    expect(await json(alice, ['share', 'pause', rkey])).toMatchObject({ state: 'paused', changed: true })
    expect((await grantRecord(plain.uri)).paused).toBe(true)
    expect(await json(alice, ['share', 'pause', rkey])).toMatchObject({ state: 'paused', changed: false })
    expect((await json(alice, ['share', 'list'])).given.find((g: { uri: string }) => g.uri === plain.uri).state).toBe('paused')
    expect(await json(alice, ['share', 'resume', plain.uri])).toMatchObject({ state: 'active', changed: true })
    expect((await grantRecord(plain.uri)).paused).toBe(false)

    // bob cannot touch alice's grant
    await fails(bob, ['share', 'pause', plain.uri], /is not your grant/)

    // revoke keeps the record, with revokedAt and the default onRevoke for the meshlet
    const revoked = await json(alice, ['share', 'revoke', rkey])
    expect(revoked.state).toBe('revoked')
    const revokedRec = await grantRecord(plain.uri)
    expect(revokedRec.onRevoke).toBe('drain')
    expect(Date.parse(revokedRec.revokedAt!)).toBeGreaterThanOrEqual(before - 60_000)
    await fails(alice, ['share', 'revoke', rkey], /already revoked/)
    await fails(alice, ['share', 'resume', rkey], /was revoked/)
    // a drain under way can still become a kill; revokedAt stays
    await json(alice, ['share', 'revoke', rkey, '--kill'])
    expect(await grantRecord(plain.uri)).toMatchObject({ onRevoke: 'kill', revokedAt: revokedRec.revokedAt })
    const killed = await json(alice, ['share', 'revoke', full.uri, '--kill'])
    expect(killed.record).toMatchObject({ onRevoke: 'kill', drainGraceSeconds: 30 })

    const states = (await json(bob, ['share', 'list', '--from', alice.owner.did])).received.map((g: { state: string }) => g.state)
    expect(states).toEqual(['revoked', 'revoked'])
  }, 600_000)

  it('fails with one line and writes nothing: a meshlet you do not own, a bad tier, an unknown grant, bad limits', async () => {
    const grants = await count(alice.owner.did, COLLECTIONS.shareGrant)
    const grant = ['share', 'grant', '--to', bob.did]
    await fails(alice, [...grant, '--meshlet', carol.meshlet.did, '--tier', 'a'], /is not one of your meshlets \(owner-mismatch/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'z'], /--tier must be a, b or c, not "z"/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did], /--tier must be a, b or c/)
    await fails(alice, ['share', 'grant', '--meshlet', alice.meshlet.did, '--tier', 'a'], /missing --to/)
    await fails(alice, [...grant, '--meshlet', 'alice', '--tier', 'a'], /--meshlet must be a DID/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--cpu', '1'], /need both --cpu and --memory/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--cpu', 'lots', '--memory', '1Gi'], /--cpu must be a positive/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--expires', 'someday'], /--expires must be a duration/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--expires', '2001-01-01'], /not in the future/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--max-jobs', '0'], /--max-jobs must be a whole number from 1/)
    await fails(alice, [...grant, '--meshlet', alice.meshlet.did, '--tier', 'a', '--on-revoke', 'shrug'], /--on-revoke must be drain or kill/)
    await fails(alice, ['share', 'grant', '--to', 'nobody-here.test', '--meshlet', alice.meshlet.did, '--tier', 'a'], /cannot resolve the handle nobody-here\.test/)
    await fails(alice, ['share', 'grant', '--to', alice.owner.did, '--meshlet', alice.meshlet.did, '--tier', 'a'], /that is you/)
    await fails(alice, ['share', 'pause', '3kaaaaaaaaaaa'], /unknown grant: 3kaaaaaaaaaaa/)
    await fails(alice, ['share', 'revoke', `at://${alice.owner.did}/${COLLECTIONS.workload}/3kaaaaaaaaaaa`], /not a share grant URI/)
    await fails(alice, ['share', 'approve', 'https://example.com'], /not an at:\/\/ URI/)
    expect(await count(alice.owner.did, COLLECTIONS.shareGrant)).toBe(grants)
  }, 600_000)

  it('request → requests (the owner sees it) → approve → requests --mine shows the grant; deny → denied', async () => {
    const mesh = alice.meshlet.did
    // carol is in alice's meshlet's cluster: alice finds her request unasked
    const carols = await json(carol, ['share', 'request', '--owner', alice.owner.handle, '--meshlet', mesh, '--tier', 'b', '--message', 'for my builds'])
    const carolReq = await reader.get(carol.owner.did, COLLECTIONS.shareRequest, carols.uri.split('/').pop())
    expect(carolReq.ok && carolReq.value.record).toMatchObject({ owner: alice.owner.did, meshlet: mesh, tier: 'b', message: 'for my builds' })
    // dave is a stranger: alice sees his request only when she names him
    const daves = await json(dave, ['share', 'request', '--owner', alice.owner.did])
    await fails(dave, ['share', 'request', '--owner', alice.owner.did, '--meshlet', carol.meshlet.did], /is not .*'s meshlet/)
    await fails(dave, ['share', 'request', '--owner', alice.owner.did, '--tier', 'd'], /--tier must be a, b or c/)

    const seen = await json<{ uri: string; recipient: string; outcome: { state: string } }[]>(alice, ['share', 'requests'])
    expect(seen.map((r) => [r.uri, r.recipient, r.outcome.state])).toEqual([[carols.uri, carol.owner.did, 'pending']])
    const withDave = await json<{ uri: string; outcome: { state: string } }[]>(alice, ['share', 'requests', '--from', dave.handle])
    expect(withDave.map((r) => [r.uri, r.outcome.state]).sort()).toEqual([[carols.uri, 'pending'], [daves.uri, 'pending']].sort())

    // approve: meshlet and tier come from the request; the grant references it
    const granted = await json(alice, ['share', 'approve', carols.uri, '--max-jobs', '2', '--expires', '30d'])
    const rec = await grantRecord(granted.uri)
    expect(rec).toMatchObject({ meshlet: mesh, recipient: carol.owner.did, tier: 'b', maxConcurrentJobs: 2, request: { uri: carols.uri, cid: carolReq.ok && carolReq.value.cid } })
    await fails(alice, ['share', 'approve', carols.uri], /already approved/)
    await fails(alice, ['share', 'deny', carols.uri], /already approved by .*: revoke that grant instead/)

    const mine = await json<{ uri: string; outcome: { state: string; grant: { uri: string; state: string; record: ShareGrantRecord } } }[]>(carol, ['share', 'requests', '--mine'])
    expect(mine).toHaveLength(1)
    expect(mine[0].uri).toBe(carols.uri)
    expect(mine[0].outcome).toMatchObject({ state: 'approved', grant: { uri: granted.uri, state: 'active', record: { meshlet: mesh, tier: 'b' } } })
    // the owner she asked is a lender she knows: the grant shows in her list unasked
    expect((await json(carol, ['share', 'list'])).received.map((g: { uri: string }) => g.uri)).toContain(granted.uri)

    // deny: a shareDenial in alice's repo; dave sees it
    await fails(alice, ['share', 'approve', daves.uri], /missing --meshlet \(the request names none\)/)
    const denials = await count(alice.owner.did, COLLECTIONS.shareDenial)
    const denied = await json(alice, ['share', 'deny', daves.uri, '--reason', 'no room this month'])
    const daveReq = await reader.get(dave.did, COLLECTIONS.shareRequest, daves.uri.split('/').pop())
    const denial = await reader.get(alice.owner.did, COLLECTIONS.shareDenial, denied.uri.split('/').pop())
    expect(denial.ok && denial.value.record).toMatchObject({ request: { uri: daves.uri, cid: daveReq.ok && daveReq.value.cid }, recipient: dave.did, reason: 'no room this month' })
    expect(await count(alice.owner.did, COLLECTIONS.shareDenial)).toBe(denials + 1)
    await fails(alice, ['share', 'deny', daves.uri], /already denied/)
    const davesView = await json<{ uri: string; outcome: { state: string; reason?: string } }[]>(dave, ['share', 'requests', '--mine'])
    expect(davesView.map((r) => [r.uri, r.outcome.state, r.outcome.reason])).toEqual([[daves.uri, 'denied', 'no room this month']])
    const text = await cli(['share', 'requests', '--mine'], as(dave))
    expect(text.stdout).toMatch(/denied.*no room this month/)

    // only the owner asked may answer
    await fails(carol, ['share', 'deny', daves.uri], new RegExp(`asks ${alice.owner.did}, not you`))
    await fails(alice, ['share', 'approve', `at://${dave.did}/${COLLECTIONS.shareRequest}/3kaaaaaaaaaaa`, '--meshlet', mesh, '--tier', 'a'], /unknown share request/)
  }, 600_000)

  it('drain and undrain flip the meshlet\'s capacity record; only its owner may', async () => {
    const meshlet: Meshlet = await startMeshlet(net, alice, { port: 0 })
    try {
      const draining = async () => {
        const cap = await reader.get(alice.meshlet.did, COLLECTIONS.capacity, 'self')
        return cap.ok ? Boolean(cap.value.record.draining) : undefined
      }
      await waitFor(async () => (await draining()) === false, { what: 'capacity record', timeoutMs: 60_000, intervalMs: 250 })
      const out = await json<{ meshlet: string; draining: boolean; running: number }[]>(alice, ['drain'])
      expect(out).toEqual([{ meshlet: alice.meshlet.did, draining: true, running: 0 }])
      await waitFor(async () => (await draining()) === true, { what: 'draining: true', timeoutMs: 60_000, intervalMs: 250 })
      const text = await cli(['drain', '--meshlet', alice.meshlet.did], as(alice))
      expect(text.stdout.trim()).toBe(`${alice.meshlet.did}: draining (0 running)`)

      await fails(carol, ['drain', '--meshlet', alice.meshlet.did], /Forbidden/)
      await fails(bob, ['undrain'], /you have no verified meshlet/)
      expect(await draining()).toBe(true)

      expect(await json(alice, ['undrain', '--meshlet', alice.meshlet.did])).toMatchObject({ meshlet: alice.meshlet.did, draining: false })
      await waitFor(async () => (await draining()) === false, { what: 'draining: false', timeoutMs: 60_000, intervalMs: 250 })
    } finally {
      await meshlet.close()
    }
  }, 600_000)
})

describe('grant state (pure, with the core\'s lapse rule)', () => {
  const MESHLET = 'did:plc:m'
  const RECIPIENT = 'did:plc:r'
  const grant = (over: Partial<ShareGrantRecord> = {}): ShareGrantRecord => ({
    $type: COLLECTIONS.shareGrant,
    meshlet: MESHLET,
    recipient: RECIPIENT,
    tier: 'a',
    createdAt: new Date(0).toISOString(),
    ...over,
  })
  const stored = (record: ShareGrantRecord): Stored<ShareGrantRecord> => ({ uri: `at://did:plc:o/${COLLECTIONS.shareGrant}/3kaaaaaaaaaaa`, cid: 'bafyg', did: 'did:plc:o', rkey: '3kaaaaaaaaaaa', record })
  let n = 0
  /** A status the meshlet wrote for a workload of `workloadOwner`, last updated at `at`. */
  const status = (workloadOwner: string, at: number, did = MESHLET): Stored<WorkloadStatusRecord> => ({
    uri: `at://${did}/${COLLECTIONS.workloadStatus}/s${++n}`,
    cid: `bafy${n}`,
    did,
    rkey: `s${n}`,
    record: {
      $type: COLLECTIONS.workloadStatus,
      workload: { uri: `at://${workloadOwner}/${COLLECTIONS.workload}/3kaaaaaaaaaa${n % 10}`, cid: 'bafyw' },
      replica: 0,
      state: 'succeeded',
      updatedAt: new Date(at).toISOString(),
    },
  })

  it('revoked, then expired, then lapsed, then paused, then active', () => {
    const now = 10 * 86_400_000
    expect(grantState(grant(), now)).toBe('active')
    expect(grantState(grant({ paused: true }), now)).toBe('paused')
    expect(grantState(grant({ paused: true, expiresAt: new Date(now).toISOString() }), now)).toBe('expired')
    expect(grantState(grant({ expiresAt: new Date(now + 1).toISOString() }), now)).toBe('active')
    expect(grantState(grant({ revokedAt: new Date(0).toISOString(), expiresAt: new Date(0).toISOString() }), now)).toBe('revoked')
    expect(grantState(grant({ paused: true }), GRANT_LAPSE_MS)).toBe('lapsed')
    expect(grantState(grant(), GRANT_LAPSE_MS - 1)).toBe('active')
  })

  it('use is a status the lending meshlet wrote for a workload of the recipient; nothing else counts', () => {
    const now = 2 * GRANT_LAPSE_MS
    const g = stored(grant())
    const recent = now - GRANT_LAPSE_MS + 1000
    expect(lastUse(g, [], now)).toBe(0)
    expect(lastUse(g, [status('did:plc:other', recent)], now)).toBe(0)
    expect(lastUse(g, [status(RECIPIENT, recent, 'did:plc:another-meshlet')], now)).toBe(0)
    expect(lastUse(g, [status(RECIPIENT, 5), status(RECIPIENT, recent), status(RECIPIENT, 7)], now)).toBe(recent)
    expect(grantState(g.record, now, lastUse(g, [status(RECIPIENT, recent)], now))).toBe('active')
    expect(grantState(g.record, now, lastUse(g, [status(RECIPIENT, now - GRANT_LAPSE_MS)], now))).toBe('lapsed')
    expect(grantState(g.record, now, lastUse(g, [status('did:plc:other', recent)], now))).toBe('lapsed')
  })
})
