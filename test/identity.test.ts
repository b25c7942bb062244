import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevNetwork } from '../src/dev/network.js'
import { linkMeshlet, verifyLink } from '../src/identity/link.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { nowIso } from '../src/util/time.js'
import { addMember, startNetwork } from './helpers/commune.js'

let net: DevNetwork
let reader: RepoReader

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
})
afterAll(async () => {
  await net?.close()
})

describe('owner↔meshlet link (real PLC + PDS)', () => {
  it('verifies a valid two-way link', async () => {
    const alice = await addMember(net, 'alice')
    const verdict = await verifyLink(reader, alice.owner.did, alice.meshlet.did)
    expect(verdict).toEqual({ ok: true, owner: alice.owner.did, meshlet: alice.meshlet.did })
  })

  it('verifies a link across two PDSes, reading each side from its own PDS', async () => {
    const pds2 = await net.addPds()
    const owner = await net.createAccount('far-owner', pds2)
    const meshlet = await net.createAccount('near-mesh')
    await linkMeshlet(owner.writer, meshlet.writer)
    expect(await reader.pdsFor(owner.did)).toBe(pds2)
    expect(await reader.pdsFor(meshlet.did)).toBe(net.pdsUrl)
    expect((await verifyLink(reader, owner.did, meshlet.did)).ok).toBe(true)
  })

  it('reports the meshlet side missing', async () => {
    const owner = await net.createAccount('o1')
    const meshlet = await net.createAccount('m1')
    await owner.writer.put(COLLECTIONS.meshlet, meshlet.did, { $type: COLLECTIONS.meshlet, meshlet: meshlet.did, createdAt: nowIso() })
    const verdict = await verifyLink(reader, owner.did, meshlet.did)
    expect(verdict).toMatchObject({ ok: false, reason: 'meshlet-record-missing' })
  })

  it('reports the owner side missing', async () => {
    const owner = await net.createAccount('o2')
    const meshlet = await net.createAccount('m2')
    await meshlet.writer.put(COLLECTIONS.meshletOwner, 'self', { $type: COLLECTIONS.meshletOwner, owner: owner.did, createdAt: nowIso() })
    const verdict = await verifyLink(reader, owner.did, meshlet.did)
    expect(verdict).toMatchObject({ ok: false, reason: 'owner-record-missing' })
  })

  it('reports a mismatched owner DID', async () => {
    const alice = await addMember(net, 'alice2')
    const mallory = await net.createAccount('mallory')
    // mallory claims alice's meshlet, but the meshlet names alice
    await mallory.writer.put(COLLECTIONS.meshlet, alice.meshlet.did, { $type: COLLECTIONS.meshlet, meshlet: alice.meshlet.did, createdAt: nowIso() })
    const verdict = await verifyLink(reader, mallory.did, alice.meshlet.did)
    expect(verdict).toMatchObject({ ok: false, reason: 'owner-mismatch' })
    expect(verdict.ok === false && verdict.detail).toContain(alice.owner.did)
  })

  it('reports an invalid meshletOwner record (written by hand, bypassing meshlet)', async () => {
    const owner = await net.createAccount('o3')
    const meshlet = await net.createAccount('m3')
    await owner.writer.put(COLLECTIONS.meshlet, meshlet.did, { $type: COLLECTIONS.meshlet, meshlet: meshlet.did, createdAt: nowIso() })
    await meshlet.writer.agent.com.atproto.repo.putRecord({
      repo: meshlet.did,
      collection: COLLECTIONS.meshletOwner,
      rkey: 'self',
      record: { $type: COLLECTIONS.meshletOwner, owner: 'not a did', createdAt: nowIso() },
      validate: false,
    })
    const verdict = await verifyLink(reader, owner.did, meshlet.did)
    expect(verdict).toMatchObject({ ok: false, reason: 'meshlet-record-invalid' })
  })

  it('reports an invalid meshlet record in the owner repo', async () => {
    const owner = await net.createAccount('o4')
    const meshlet = await net.createAccount('m4')
    await meshlet.writer.put(COLLECTIONS.meshletOwner, 'self', { $type: COLLECTIONS.meshletOwner, owner: owner.did, createdAt: nowIso() })
    await owner.writer.agent.com.atproto.repo.putRecord({
      repo: owner.did,
      collection: COLLECTIONS.meshlet,
      rkey: meshlet.did,
      record: { $type: COLLECTIONS.meshlet, meshlet: meshlet.did, createdAt: 12 },
      validate: false,
    })
    const verdict = await verifyLink(reader, owner.did, meshlet.did)
    expect(verdict).toMatchObject({ ok: false, reason: 'owner-record-invalid' })
  })

  it('reports an unresolvable DID on either side, without throwing', async () => {
    const alice = await addMember(net, 'alice3')
    const ghost = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    expect(await verifyLink(reader, alice.owner.did, ghost)).toMatchObject({ ok: false, reason: 'meshlet-unresolvable' })
    expect(await verifyLink(reader, ghost, alice.meshlet.did)).toMatchObject({ ok: false, reason: 'owner-unresolvable' })
  })
})
