// Commit authentication: signature checks (libsecp256k1 for secp256k1 keys, OpenSSL for the
// rest and as the fallback) that agree with @atproto/crypto's rules,
// and op proofs on real commits from a real PDS's firehose, genuine and tampered.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import { P256Keypair, Secp256k1Keypair, verifySignature, type Keypair } from '@atproto/crypto'
import { BlockMap, signCommit, type Commit } from '@atproto/repo'
import { decode as cborDecode } from '@atproto/lex-cbor'
import type { CommitEvt } from '@atproto/sync'
import { secp256k1Verifier, verifyDidKeySignature } from '../src/identity/signature.js'
import { CommitProver } from '../src/sync/commit-proof.js'
import type { DevNetwork, DevAccount } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { nowIso } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { watchCommits, type CommitWatch } from './helpers/commits.js'

const ORDERS = {
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  p256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}

/** The same signature with S replaced by order − S: valid ECDSA, rejected by atproto as malleable. */
function highS(sig: Uint8Array, order: bigint): Uint8Array {
  const s = BigInt('0x' + Buffer.from(sig.subarray(32)).toString('hex'))
  const flipped = Buffer.from((order - s).toString(16).padStart(64, '0'), 'hex')
  return Uint8Array.from([...sig.subarray(0, 32), ...flipped])
}

/** A compact signature re-encoded as DER: valid ECDSA, rejected by atproto (compact only). */
function der(sig: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let x = Buffer.from(b)
    while (x.length > 1 && x[0] === 0) x = x.subarray(1)
    if (x[0] & 0x80) x = Buffer.concat([Buffer.from([0]), x])
    return Buffer.concat([Buffer.from([0x02, x.length]), x])
  }
  const body = Buffer.concat([int(sig.subarray(0, 32)), int(sig.subarray(32))])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('signature verification through libsecp256k1 and OpenSSL', () => {
  const keypairs: { name: keyof typeof ORDERS; kp: Keypair }[] = []
  let opensslOnly: typeof verifyDidKeySignature
  beforeAll(async () => {
    keypairs.push({ name: 'secp256k1', kp: await Secp256k1Keypair.create() }, { name: 'secp256k1', kp: await Secp256k1Keypair.create() })
    keypairs.push({ name: 'p256', kp: await P256Keypair.create() }, { name: 'p256', kp: await P256Keypair.create() })
    // the same module loaded without the native binding: what a platform without a prebuild runs
    vi.stubEnv('MESHLET_NO_LIBSECP256K1', '1')
    vi.resetModules()
    const fallback = await import('../src/identity/signature.js')
    vi.unstubAllEnvs()
    expect(fallback.secp256k1Verifier).toBe('openssl')
    opensslOnly = fallback.verifyDidKeySignature
  })

  it('uses libsecp256k1 for secp256k1 keys on this platform (linux-x64 has a prebuilt binding)', () => {
    expect(secp256k1Verifier).toBe('libsecp256k1')
  })

  it('gives @atproto/crypto\'s verdict on genuine, tampered, malleated, DER, out-of-range and foreign signatures, through either verifier', async () => {
    const tampers = ['genuine', 'message bit', 'signature bit', 'high S', 'DER', 'other key', 'truncated', 'r out of range'] as const
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(3), fc.constantFrom(...tampers), fc.nat(), async (msg, k, tamper, bit) => {
        const { name, kp } = keypairs[k]
        const other = keypairs[k ^ 1].kp
        let data = msg
        let sig = await kp.sign(msg)
        let didKey = kp.did()
        if (tamper === 'message bit') {
          data = msg.length ? Uint8Array.from(msg) : Uint8Array.of(0)
          data[bit % data.length] ^= 1 << bit % 8
        }
        if (tamper === 'signature bit') {
          sig = Uint8Array.from(sig)
          sig[bit % 64] ^= 1 << bit % 8
        }
        if (tamper === 'high S') sig = highS(sig, ORDERS[name])
        if (tamper === 'DER') sig = der(sig)
        if (tamper === 'other key') didKey = other.did()
        if (tamper === 'truncated') sig = sig.subarray(0, 63)
        if (tamper === 'r out of range') sig = Uint8Array.from([...new Uint8Array(32).fill(0xff), ...sig.subarray(32)])
        // @atproto/crypto throws on a signature of the wrong length: rejected, as a false is
        const expected = await verifySignature(didKey, data, sig).catch(() => false)
        expect(await verifyDidKeySignature(didKey, data, sig)).toBe(expected)
        expect(await opensslOnly(didKey, data, sig)).toBe(expected)
        if (tamper === 'genuine') expect(expected).toBe(true)
        if (tamper === 'high S' || tamper === 'DER' || tamper === 'other key' || tamper === 'truncated' || tamper === 'r out of range') expect(expected).toBe(false)
      }),
      { numRuns: 300 },
    )
  })
})

describe('op proofs on real commits (real PLC + PDS + firehose)', () => {
  let net: DevNetwork
  let alice: DevAccount
  let bob: DevAccount
  let commits: CommitWatch

  beforeAll(async () => {
    net = await startNetwork()
    alice = await net.createAccount('alice')
    bob = await net.createAccount('bob')
    commits = watchCommits(net)
  })
  afterAll(async () => {
    await commits?.close()
    await net?.close()
  })

  const cluster = (members: string[]) => ({ $type: COLLECTIONS.cluster, members, createdAt: nowIso() })
  const eventFor = (uri: string, kind: CommitEvt['event']) => commits.eventFor(uri, kind)
  /** The event with its commit block replaced by `commit` re-signed with `kp`. */
  const resigned = async (evt: CommitEvt, kp: Keypair, change: (c: Commit) => Commit = (c) => c): Promise<CommitEvt> => {
    const original = cborDecode(evt.blocks.get(evt.commit)!) as Commit
    const { sig: _sig, ...unsigned } = change(original)
    const blocks = new BlockMap(evt.blocks)
    const cid = await blocks.add(await signCommit(unsigned, kp))
    return { ...evt, commit: cid, blocks }
  }

  it('proves genuine creates, updates and deletes, once per commit', async () => {
    const prover = new CommitProver(net.idResolver)
    const put = await alice.writer.put(COLLECTIONS.cluster, 'a', cluster([]))
    const created = await eventFor(put.uri, 'create')
    expect(await prover.proves(created)).toBe(true)
    await alice.writer.put(COLLECTIONS.cluster, 'a', cluster([bob.did]))
    expect(await prover.proves(await eventFor(put.uri, 'update'))).toBe(true)
    await alice.writer.delete(COLLECTIONS.cluster, 'a')
    expect(await prover.proves(await eventFor(put.uri, 'delete'))).toBe(true)
    // the commit block really is the repo's: re-signed with the account's own key, it still proves
    const ownKey = await net.network.pds.ctx.actorStore.keypair(alice.did)
    expect(await prover.proves(await resigned(created, ownKey))).toBe(true)
  })

  it('rejects an op its commit does not prove: foreign key, wrong repo, wrong record, undone delete', async () => {
    const prover = new CommitProver(net.idResolver)
    const put = await alice.writer.put(COLLECTIONS.cluster, 'b', cluster([]))
    const created = await eventFor(put.uri, 'create')
    // signed by a key that is not alice's
    expect(await prover.proves(await resigned(created, await Secp256k1Keypair.create()))).toBe(false)
    // alice's genuine commit claimed for bob's repo
    expect(await prover.proves({ ...created, did: bob.did as CommitEvt['did'] })).toBe(false)
    // a record CID the commit's MST does not hold at that path
    const other = await alice.writer.put(COLLECTIONS.cluster, 'c', cluster([bob.did]))
    expect(await prover.proves({ ...created, cid: (await eventFor(other.uri, 'create') as { cid: CommitEvt['commit'] }).cid } as CommitEvt)).toBe(false)
    // a path the commit holds, presented as deleted
    expect(await prover.proves({ ...created, event: 'delete' } as CommitEvt)).toBe(false)
    // a commit whose signed body names another repo
    const ownKey = await net.network.pds.ctx.actorStore.keypair(alice.did)
    expect(await prover.proves(await resigned(created, ownKey, (c) => ({ ...c, did: bob.did })))).toBe(false)
    // and the genuine event still proves after all of that
    expect(await prover.proves(created)).toBe(true)
  })
})
