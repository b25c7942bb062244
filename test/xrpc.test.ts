import { Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { place } from '../src/scheduler/placement.js'
import { nowIso, waitFor } from '../src/util/time.js'
import { MeshletCallError, MeshletClient } from '../src/xrpc/client.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'

let net: DevNetwork
let alice: Member, bob: Member, carol: Member
let aliceMeshlet: Meshlet, bobMeshlet: Meshlet
let reader: RepoReader
let bobsWorkload: string

const client = (m: Member) => new MeshletClient(m.owner.writer.agent, reader)

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  ;[alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => addMember(net, n)))
  await formCluster('c', [alice, bob])
  aliceMeshlet = await startMeshlet(net, alice, { port: 0 })
  bobMeshlet = await startMeshlet(net, bob, { port: 0, resources: { cpuMillis: 100, memoryMiB: 64 } })
  // bob's workload is too large for bob's meshlet, so it lands on alice's
  const res = await bob.owner.writer.create(COLLECTIONS.workload, {
    $type: COLLECTIONS.workload,
    image: 'meshlet-test/busybox:latest',
    resources: { cpuMillis: 500, memoryMiB: 128 },
    replicas: 1,
    bidWindowMs: 2000,
    createdAt: nowIso(),
  })
  bobsWorkload = res.uri
  await waitFor(() => place(aliceMeshlet.ctx.state, bobsWorkload, Date.now())?.selected[0]?.meshlet === alice.meshlet.did && aliceMeshlet.ctx.state.statusesFor(bobsWorkload).length > 0, { what: 'placement on alice' })
}, 60_000)

afterAll(async () => {
  await aliceMeshlet?.close()
  await bobMeshlet?.close()
  await net?.close()
})

async function expectError(p: Promise<unknown>, status: number, error?: string) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(MeshletCallError)
  expect((err as MeshletCallError).status).toBe(status)
  if (error) expect((err as MeshletCallError).error).toBe(error)
}

/** Raw call with a hand-made Authorization header. */
async function raw(path: string, token?: string, init: RequestInit = {}) {
  const res = await fetch(`${aliceMeshlet.url}/xrpc/${path}`, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) },
  })
  return { status: res.status, body: (await res.json()) as { error?: string; message?: string } }
}

describe('farm.meshlet XRPC with service auth', () => {
  it('publishes its endpoint in the capacity record, so a DID is enough', async () => {
    expect(await client(bob).endpointOf(alice.meshlet.did)).toBe(aliceMeshlet.url)
    const health = await client(carol).call(alice.meshlet.did, 'farm.meshlet.health')
    expect(health).toEqual({ did: alice.meshlet.did, status: 'ok', version: expect.any(String) })
  })

  it('getCapacity and listWorkloads: owner and cluster members yes, others no', async () => {
    const cap = await client(alice).call(alice.meshlet.did, 'farm.meshlet.getCapacity')
    expect(cap.did).toBe(alice.meshlet.did)
    expect(cap.owner).toBe(alice.owner.did)
    expect(cap.running).toBe(1)
    const list = await client(bob).call(alice.meshlet.did, 'farm.meshlet.listWorkloads', { limit: 10 })
    expect(list.replicas.map((r) => r.workload)).toContain(bobsWorkload)
    await expectError(client(carol).call(alice.meshlet.did, 'farm.meshlet.getCapacity'), 403, 'Forbidden')
    await expectError(client(carol).call(alice.meshlet.did, 'farm.meshlet.listWorkloads'), 403, 'Forbidden')
  })

  it('getWorkloadStatus and getWorkloadLogs: workload owner and meshlet owner yes, a member no', async () => {
    const st = await client(bob).call(alice.meshlet.did, 'farm.meshlet.getWorkloadStatus', { uri: bobsWorkload })
    expect(st.replicas[0]).toMatchObject({ workload: bobsWorkload, replica: 0, state: 'scheduled', owner: bob.owner.did })
    // the placement's cost on this meshlet: its bid and status, batched
    expect(st.replicas[0].writes).toBeGreaterThanOrEqual(1)
    expect(st.replicas[0].writes).toBeLessThanOrEqual(2)
    expect((await client(alice).call(alice.meshlet.did, 'farm.meshlet.getWorkloadStatus', { uri: bobsWorkload })).uri).toBe(bobsWorkload)
    const logs = await client(bob).call(alice.meshlet.did, 'farm.meshlet.getWorkloadLogs', { uri: bobsWorkload })
    expect(logs).toMatchObject({ uri: bobsWorkload, replica: 0, cursor: '0' })
    await expectError(client(carol).call(alice.meshlet.did, 'farm.meshlet.getWorkloadStatus', { uri: bobsWorkload }), 403)
    // alice's meshlet owner is alice; bob is only a member there, and this workload is bob's,
    // so bob may read it — but not one of alice's own
    const mine = await alice.owner.writer.create(COLLECTIONS.workload, {
      $type: COLLECTIONS.workload,
      image: 'meshlet-test/busybox:latest',
      resources: { cpuMillis: 100, memoryMiB: 64 },
      replicas: 1,
      createdAt: nowIso(),
    })
    await waitFor(() => aliceMeshlet.ctx.state.statusesFor(mine.uri).length > 0, { what: 'alice placed her own' })
    await expectError(client(bob).call(alice.meshlet.did, 'farm.meshlet.getWorkloadLogs', { uri: mine.uri }), 403)
  })

  it('pause, resume and delete by the workload owner; drain only by the meshlet owner', async () => {
    const paused = await client(bob).call(alice.meshlet.did, 'farm.meshlet.pauseWorkload', {}, { uri: bobsWorkload })
    expect(paused.replicas[0].state).toBe('paused')
    const resumed = await client(bob).call(alice.meshlet.did, 'farm.meshlet.resumeWorkload', {}, { uri: bobsWorkload })
    expect(resumed.replicas[0].state).toBe('running')
    await expectError(client(bob).call(alice.meshlet.did, 'farm.meshlet.drain'), 403)
    await expectError(client(carol).call(alice.meshlet.did, 'farm.meshlet.deleteWorkload', {}, { uri: bobsWorkload }), 403)
    const drained = await client(alice).call(alice.meshlet.did, 'farm.meshlet.drain')
    expect(drained.draining).toBe(true)
    expect((await client(carol).call(alice.meshlet.did, 'farm.meshlet.health')).status).toBe('draining')
    await waitFor(async () => (await reader.get(alice.meshlet.did, COLLECTIONS.capacity, 'self')).ok, { what: 'capacity' })
    const capRec = await reader.get(alice.meshlet.did, COLLECTIONS.capacity, 'self')
    expect(capRec.ok && capRec.value.record.draining).toBe(true)
    expect((await client(alice).call(alice.meshlet.did, 'farm.meshlet.undrain')).draining).toBe(false)

    const deleted = await client(bob).call(alice.meshlet.did, 'farm.meshlet.deleteWorkload', {}, { uri: bobsWorkload })
    expect(deleted.replicas[0].state).toBe('stopped')
    // the public status record says so too, and the workload record stays with its owner
    await waitFor(() => bobMeshlet.ctx.state.statusesFor(bobsWorkload).some((s) => s.record.state === 'stopped'), { what: 'stopped status on the firehose' })
    expect((await reader.get(bob.owner.did, COLLECTIONS.workload, bobsWorkload.split('/').pop()!)).ok).toBe(true)
  })

  describe('bad tokens get the right error and change nothing', () => {
    const lxm = 'farm.meshlet.drain'
    const tokenFor = async (m: Member, aud: string, method: string | undefined) =>
      (await m.owner.writer.agent.com.atproto.server.getServiceAuth({ aud, ...(method ? { lxm: method } : {}) })).data.token
    const ownKey = async (did: string) => net.network.pds.ctx.actorStore.keypair(did)

    it('no token', async () => {
      const r = await raw(lxm, undefined, { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('AuthMissing')
    })
    it('wrong audience', async () => {
      const r = await raw(lxm, await tokenFor(alice, bob.meshlet.did, lxm), { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('BadJwtAudience')
    })
    it('wrong lxm', async () => {
      const r = await raw(lxm, await tokenFor(alice, alice.meshlet.did, 'farm.meshlet.undrain'), { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('BadJwtLexiconMethod')
    })
    it('accepts the did#service audience form', async () => {
      const r = await raw('farm.meshlet.getCapacity', await tokenFor(alice, `${alice.meshlet.did}#meshlet`, 'farm.meshlet.getCapacity'))
      expect(r.status).toBe(200)
    })
    it('expired', async () => {
      const token = await createServiceJwt({ iss: alice.owner.did, aud: alice.meshlet.did, lxm, exp: Math.floor(Date.now() / 1000) - 60, keypair: await ownKey(alice.owner.did) })
      const r = await raw(lxm, token, { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('JwtExpired')
    })
    it('signed by a key that is not the issuer’s', async () => {
      const token = await createServiceJwt({ iss: alice.owner.did, aud: alice.meshlet.did, lxm, keypair: await Secp256k1Keypair.create() })
      const r = await raw(lxm, token, { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('BadJwtSignature')
    })
    it('malformed', async () => {
      const r = await raw(lxm, 'not.a.jwt', { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('BadJwt')
    })
    it('a replayed token: the first call goes through, the same token again is refused', async () => {
      const token = await tokenFor(alice, alice.meshlet.did, 'farm.meshlet.getCapacity')
      expect((await raw('farm.meshlet.getCapacity', token)).status).toBe(200)
      const again = await raw('farm.meshlet.getCapacity', token)
      expect(again.status).toBe(401)
      expect(again.body.error).toBe('JwtReplayed')
      // refused before anything ran: a replayed drain token does not drain
      const drainToken = await tokenFor(alice, alice.meshlet.did, 'farm.meshlet.undrain')
      expect((await raw('farm.meshlet.undrain', drainToken, { method: 'POST' })).status).toBe(200)
      expect((await raw('farm.meshlet.undrain', drainToken, { method: 'POST' })).body.error).toBe('JwtReplayed')
    })
    it('a token that lives longer than 5 minutes, as the PDS mints on request (up to an hour)', async () => {
      const exp = Math.floor(Date.now() / 1000) + 30 * 60
      const token = (await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm, exp })).data.token
      const r = await raw(lxm, token, { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('JwtLifetimeTooLong')
      // the default lifetime (60 s) and a 5-minute one are fine
      const ok = (await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm: 'farm.meshlet.getCapacity', exp: Math.floor(Date.now() / 1000) + 290 })).data.token
      expect((await raw('farm.meshlet.getCapacity', ok)).status).toBe(200)
    })
    it('a token far from expiry whose iat is set late to look short-lived', async () => {
      const now = Math.floor(Date.now() / 1000)
      const token = await createServiceJwt({ iss: alice.owner.did, aud: alice.meshlet.did, lxm, iat: now + 3000, exp: now + 3200, keypair: await ownKey(alice.owner.did) })
      const r = await raw(lxm, token, { method: 'POST' })
      expect(r.status).toBe(401)
      expect(r.body.error).toBe('JwtLifetimeTooLong')
    })
    it('the client asks for a fresh token per call', async () => {
      // two calls in a row both pass: nothing is cached and replayed
      for (let i = 0; i < 2; i++) expect((await client(alice).call(alice.meshlet.did, 'farm.meshlet.getCapacity')).did).toBe(alice.meshlet.did)
    })
    it('none of them changed anything', () => {
      expect(aliceMeshlet.ctx.draining).toBe(false)
    })
  })

  describe('bad params are rejected by lexicon validation', () => {
    it('wrong types and out-of-range numbers', async () => {
      const token = (await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm: 'farm.meshlet.listWorkloads' })).data.token
      const a = await raw('farm.meshlet.listWorkloads?limit=abc', token)
      expect(a.status).toBe(400)
      expect(a.body.error).toBe('InvalidRequest')
      const b = await raw('farm.meshlet.listWorkloads?limit=1000', token)
      expect(b.status).toBe(400)
      const t2 = (await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm: 'farm.meshlet.getWorkloadStatus' })).data.token
      const c = await raw('farm.meshlet.getWorkloadStatus?uri=not-a-uri', t2)
      expect(c.status).toBe(400)
      const t3 = (await alice.owner.writer.agent.com.atproto.server.getServiceAuth({ aud: alice.meshlet.did, lxm: 'farm.meshlet.deleteWorkload' })).data.token
      const d = await raw('farm.meshlet.deleteWorkload', t3, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uri: 42 }) })
      expect(d.status).toBe(400)
    })
    it('unknown workload URIs', async () => {
      const ghost = `at://${bob.owner.did}/${COLLECTIONS.workload}/3kaaaaaaaaaaa`
      await expectError(client(bob).call(alice.meshlet.did, 'farm.meshlet.getWorkloadStatus', { uri: ghost }), 400, 'WorkloadNotFound')
      await expectError(client(bob).call(alice.meshlet.did, 'farm.meshlet.deleteWorkload', {}, { uri: ghost }), 400, 'WorkloadNotFound')
    })
  })

  it('pairs with a one-time code, once (the full flow is in pairing.test.ts)', async () => {
    const fresh = await net.createAccount('fresh-mesh')
    const owner = await net.createAccount('new-owner')
    const m = await startMeshlet(net, { name: 'fresh', owner, meshlet: fresh }, { port: 0 })
    try {
      const { code } = m.pairing.issue()
      const c = new MeshletClient(owner.writer.agent, reader)
      await expectError(c.call(fresh.did, 'farm.meshlet.pair', {}, { otp: code === '00000000' ? '11111111' : '00000000' }), 400, 'InvalidOtp')
      const res = await c.call(fresh.did, 'farm.meshlet.pair', {}, { otp: code })
      expect(res).toEqual({ meshlet: fresh.did, owner: owner.did })
      const back = await reader.get(fresh.did, COLLECTIONS.meshletOwner, 'self')
      expect(back.ok && back.value.record.owner).toBe(owner.did)
      await expectError(c.call(fresh.did, 'farm.meshlet.pair', {}, { otp: code }), 400, 'UsedOtp')
    } finally {
      await m.close()
    }
  })
})
