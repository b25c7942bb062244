// The audit log and the XRPC shell's logging, on the real PDS: an entry for each control
// call (refused ones included), for each share-grant change the meshlet sees for itself,
// for what the daemon's parts report through ctx.audit; read by the owner only, newest
// first, page by page, over farm.meshlet.getAuditLog and `meshlet audit`. Refusals are
// logged at info with the caller and the method; the meshlet's own faults at error.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditCommands } from '../src/cli/audit.js'
import { Meshlet } from '../src/daemon/meshlet.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import type { Entry } from '../src/lexicon/types/farm/meshlet/getAuditLog.js'
import { COLLECTIONS, type ShareGrantRecord } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { MeshletCallError, MeshletClient } from '../src/xrpc/client.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { runCommand } from './helpers/cli.js'

let net: DevNetwork
let reader: RepoReader
let alice: Member, bob: Member, carol: Member
let meshlet: Meshlet
const logs: { level: number; msg: string; method?: string; status?: number; caller?: string; claimedCaller?: string }[] = []

const client = (m: Member) => new MeshletClient(m.owner.writer.agent, reader)
const ghost = () => `at://${bob.owner.did}/${COLLECTIONS.workload}/3kaaaaaaaaaaa`

/** The log as its owner reads it, all of it, newest first. */
async function readAll(): Promise<Entry[]> {
  const out: Entry[] = []
  let cursor: string | undefined
  do {
    const page = await client(alice).call(alice.meshlet.did, 'farm.meshlet.getAuditLog', { limit: 100, ...(cursor ? { cursor } : {}) })
    out.push(...page.entries)
    cursor = page.cursor
  } while (cursor)
  return out
}

/** Waits until the owner's reading of the log satisfies `check` (a call's entry is written once its response is done). */
const logWhere = (check: (entries: Entry[]) => boolean, what: string) =>
  waitFor(async () => {
    const entries = await readAll()
    return check(entries) ? entries : undefined
  }, { what, timeoutMs: 30_000, intervalMs: 200 })

async function expectCallError(p: Promise<unknown>, status: number) {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(MeshletCallError)
  expect((err as MeshletCallError).status).toBe(status)
}

const run = runCommand
const ownerFlags = (a: DevAccount) => ['--pds', a.pdsUrl, '--handle', a.handle, '--password', a.password, '--plc', net.plcUrl, '--insecure-http']

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  ;[alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => addMember(net, n)))
  await formCluster('c', [alice, bob])
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) })
  meshlet = await Meshlet.start(
    {
      service: alice.meshlet.pdsUrl,
      identifier: alice.meshlet.handle,
      password: alice.meshlet.password,
      plcUrl: net.plcUrl,
      allowInsecureHttp: true,
      dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-audit-')),
      driver: 'none',
      resources: { cpuMillis: 4000, memoryMiB: 4096, storageMiB: 10240, gpus: 0 },
      diskFloorMiB: 0,
      port: 0,
    },
    { logger },
  )
  await waitFor(() => meshlet.ctx.authorizer.isMember(bob.owner.did), { what: 'bob verified as a member' })
}, 90_000)

afterAll(async () => {
  await meshlet?.close()
  await net?.close()
})

describe('the audit log', () => {
  it('has an entry for each control call, refused ones included, with caller and outcome', async () => {
    await client(alice).call(alice.meshlet.did, 'farm.meshlet.getCapacity')
    await client(bob).call(alice.meshlet.did, 'farm.meshlet.listWorkloads', { limit: 5 })
    await expectCallError(client(carol).call(alice.meshlet.did, 'farm.meshlet.getCapacity'), 403)
    const noToken = await fetch(`${meshlet.url}/xrpc/farm.meshlet.drain`, { method: 'POST' })
    expect(noToken.status).toBe(401)
    await client(alice).call(alice.meshlet.did, 'farm.meshlet.drain')
    await client(alice).call(alice.meshlet.did, 'farm.meshlet.undrain')
    await expectCallError(client(bob).call(alice.meshlet.did, 'farm.meshlet.pauseWorkload', {}, { uri: ghost() }), 400)
    await expectCallError(client(bob).call(alice.meshlet.did, 'farm.meshlet.getAuditLog'), 403)
    await client(carol).call(alice.meshlet.did, 'farm.meshlet.health')

    const line = (e: Entry) => [e.action, e.actor ?? '-', e.outcome, e.detail?.status ?? '', e.detail?.error ?? '', e.target ?? ''].join(' ').trim()
    const expected = [
      `farm.meshlet.getCapacity ${alice.owner.did} ok`,
      `farm.meshlet.listWorkloads ${bob.owner.did} ok`,
      `farm.meshlet.getCapacity ${carol.owner.did} refused 403 Forbidden`,
      'farm.meshlet.drain - refused 401 AuthMissing',
      `farm.meshlet.drain ${alice.owner.did} ok`,
      `farm.meshlet.undrain ${alice.owner.did} ok`,
      `farm.meshlet.pauseWorkload ${bob.owner.did} refused 400 WorkloadNotFound ${ghost()}`,
      `farm.meshlet.getAuditLog ${bob.owner.did} refused 403 Forbidden`,
    ]
    // the owner's own reads of the log are entries too; leave them out here
    const calls = (es: Entry[]) => es.filter((e) => !(e.action === 'farm.meshlet.getAuditLog' && e.actor === alice.owner.did)).reverse()
    const entries = await logWhere((es) => calls(es).length >= expected.length, 'the calls logged')
    expect(calls(entries).map(line)).toEqual(expected)
    // health is public and no control action: not logged
    expect(entries.some((e) => e.action === 'farm.meshlet.health')).toBe(false)
    // newest first, by increasing id and time
    for (let i = 1; i < entries.length; i++) {
      expect(entries[i].id).toBeLessThan(entries[i - 1].id)
      expect(entries[i].at <= entries[i - 1].at).toBe(true)
    }
  })

  it('refusals are logged at info with the caller and the method; the meshlet\u2019s own fault at error', async () => {
    const forbidden = logs.find((l) => l.status === 403 && l.method === 'farm.meshlet.getCapacity')
    expect(forbidden).toMatchObject({ level: 30, caller: carol.owner.did })
    expect(logs.find((l) => l.status === 401 && l.method === 'farm.meshlet.drain')).toMatchObject({ level: 30 })
    expect(logs.find((l) => l.status === 400 && l.method === 'farm.meshlet.pauseWorkload')).toMatchObject({ level: 30, caller: bob.owner.did })
    expect(logs.filter((l) => l.level >= 50)).toEqual([])

    // a fault of the meshlet itself (its capacity cannot be computed) is an error, and audited as one
    const real = meshlet.ctx.capacityRecord
    meshlet.ctx.capacityRecord = () => {
      throw new Error('capacity probe failed')
    }
    try {
      await expectCallError(client(alice).call(alice.meshlet.did, 'farm.meshlet.getCapacity'), 500)
    } finally {
      meshlet.ctx.capacityRecord = real
    }
    expect(logs.filter((l) => l.level >= 50)).toMatchObject([{ level: 50, status: 500, method: 'farm.meshlet.getCapacity', caller: alice.owner.did }])
    await logWhere((es) => es.some((e) => e.action === 'farm.meshlet.getCapacity' && e.outcome === 'error' && e.detail?.status === 500), 'the fault audited')
  })

  it('pages newest first with a cursor, without gaps or repeats', async () => {
    const all = await readAll()
    const paged: Entry[] = []
    let cursor: string | undefined
    do {
      const page = await client(alice).call(alice.meshlet.did, 'farm.meshlet.getAuditLog', { limit: 3, ...(cursor ? { cursor } : {}) })
      expect(page.entries.length).toBeLessThanOrEqual(3)
      paged.push(...page.entries)
      cursor = page.cursor
    } while (cursor)
    // each page call is itself logged, after the reading began: the older part is what must match
    const start = paged.findIndex((e) => e.id === all[0].id)
    expect(paged.slice(start).map((e) => e.id)).toEqual(all.map((e) => e.id))
    const bad = await fetch(`${meshlet.url}/xrpc/farm.meshlet.getAuditLog?cursor=abc`, {
      headers: { authorization: `Bearer ${(await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm: 'farm.meshlet.getAuditLog' })).data.token}` },
    })
    expect(bad.status).toBe(400)
  })

  it('records each change of a share grant of this meshlet by its owner', async () => {
    const grant = (over: Partial<ShareGrantRecord> = {}): ShareGrantRecord => ({
      $type: COLLECTIONS.shareGrant,
      meshlet: alice.meshlet.did,
      recipient: carol.owner.did,
      tier: 'a',
      createdAt: nowIso(),
      ...over,
    })
    const { uri } = await alice.owner.writer.create(COLLECTIONS.shareGrant, grant())
    const rkey = uri.split('/').pop()!
    const grantEntries = (es: Entry[]) => es.filter((e) => e.action.startsWith('grant.') && e.detail?.uri === uri).reverse()
    await logWhere((es) => grantEntries(es).length === 1, 'grant.created')
    await alice.owner.writer.put(COLLECTIONS.shareGrant, rkey, grant({ paused: true }))
    await logWhere((es) => grantEntries(es).length === 2, 'grant.paused')
    await alice.owner.writer.put(COLLECTIONS.shareGrant, rkey, grant({ maxConcurrentJobs: 2 }))
    await logWhere((es) => grantEntries(es).length === 3, 'grant.resumed')
    await alice.owner.writer.put(COLLECTIONS.shareGrant, rkey, grant({ maxConcurrentJobs: 2, revokedAt: nowIso(), onRevoke: 'kill' }))
    await logWhere((es) => grantEntries(es).length === 4, 'grant.revoked')
    await alice.owner.writer.delete(COLLECTIONS.shareGrant, rkey)
    const entries = await logWhere((es) => grantEntries(es).length === 5, 'grant.deleted')
    expect(grantEntries(entries).map((e) => `${e.action} ${e.actor === alice.owner.did} ${e.target === carol.owner.did} ${e.outcome}`)).toEqual([
      'grant.created true true seen',
      'grant.paused true true seen',
      'grant.resumed true true seen',
      'grant.revoked true true seen',
      'grant.deleted true true seen',
    ])
    expect(grantEntries(entries)[3].detail).toMatchObject({ onRevoke: 'kill', maxConcurrentJobs: 2 })

    // a "grant" of alice's meshlet written by someone else is no grant: nothing recorded
    const fake = await bob.owner.writer.create(COLLECTIONS.shareGrant, grant({ recipient: bob.owner.did }))
    await waitFor(() => meshlet.ctx.state.grants.has(fake.uri), { what: 'the fake grant on the firehose' })
    expect((await readAll()).some((e) => e.detail?.uri === fake.uri)).toBe(false)
  })

  it('takes what the daemon\u2019s parts report through ctx.audit', async () => {
    meshlet.ctx.audit({ action: 'replica.killed', actor: alice.owner.did, target: ghost(), outcome: 'stopped', detail: { reason: 'grant revoked (kill)' } })
    const entries = await logWhere((es) => es.some((e) => e.action === 'replica.killed'), 'the reported entry')
    expect(entries.find((e) => e.action === 'replica.killed')).toMatchObject({ target: ghost(), outcome: 'stopped', detail: { reason: 'grant revoked (kill)' } })
  })

  it('meshlet audit: the owner\u2019s meshlets by default, --limit, one-line refusals', async () => {
    // more than a page (100) of entries: refused calls cost the caller nothing but are each logged
    for (let i = 0; i < 110; i++) expect((await fetch(`${meshlet.url}/xrpc/farm.meshlet.undrain`, { method: 'POST' })).status).toBe(401)
    await logWhere((es) => es.length > 120, 'more than 120 entries')
    const r = await run(auditCommands.audit, [...ownerFlags(alice.owner), '--limit', '120', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { meshlet: string; entries: Entry[] }[]
    expect(out.map((l) => l.meshlet)).toEqual([alice.meshlet.did])
    expect(out[0].entries).toHaveLength(120)
    expect(new Set(out[0].entries.map((e) => e.id)).size).toBe(120)
    const text = await run(auditCommands.audit, [...ownerFlags(alice.owner), '--meshlet', alice.meshlet.did, '--limit', '3'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout.split('\n')).toHaveLength(4)
    expect(text.stdout).toMatch(/farm\.meshlet\.getAuditLog {2}ok {2}by did:/)

    const notOwner = await run(auditCommands.audit, [...ownerFlags(bob.owner), '--meshlet', alice.meshlet.did])
    expect(notOwner.code).toBe(1)
    expect(notOwner.stderr).toMatch(/only the meshlet's owner may read its audit log/)
    const badLimit = await run(auditCommands.audit, [...ownerFlags(alice.owner), '--limit', '0'])
    expect(badLimit.stderr).toMatch(/--limit must be a whole number/)
    for (const x of [notOwner, badLimit]) expect(x.stderr.split('\n')).toHaveLength(1)
  })
})
