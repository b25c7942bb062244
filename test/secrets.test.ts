// Sealed secrets are bound to their place: the workload owner, the workload record's key,
// the secret's name and the meshlet. A ciphertext copied anywhere else does not open, and
// a secret is sealed only to meshlets that could be asked to run the workload.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OwnerSession } from '../src/cli/owner.js'
import { parseSpec } from '../src/cli/spec.js'
import { Meshlet } from '../src/daemon/meshlet.js'
import { replicaSpec } from '../src/daemon/replica-spec.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS, type WorkloadRecord } from '../src/records/index.js'
import { rankCandidates } from '../src/scheduler/placement.js'
import type { Stored } from '../src/scheduler/state.js'
import { waitFor } from '../src/util/time.js'
import { seal, secretBinding, X25519, type SecretBinding } from '../src/util/x25519.js'
import { addMember, formCluster, publishCapacity, setCluster, startNetwork, type Member } from './helpers/commune.js'
import { requireDocker } from './helpers/docker.js'

const memoryStore = () => {
  const m = new Map<string, string>()
  return { get: (k: string) => m.get(k), set: (k: string, v: string) => void m.set(k, v) }
}

const VALUE = 'hunter2-correct-horse-battery'
const place: SecretBinding = {
  owner: 'did:plc:ownerownerownerownerowne',
  rkey: '3kabcdefghijk',
  name: 'TOKEN',
  meshlet: 'did:plc:meshmeshmeshmeshmeshmes',
}

describe('sealing (unit)', () => {
  const key = X25519.loadOrCreate(memoryStore())

  it('opens what was sealed to this key for this place', () => {
    expect(key.open(seal(key.publicKeyBase64, VALUE, place), place)).toBe(VALUE)
    expect(key.open(seal(key.publicKeyBase64, '', place), place)).toBe('')
    // a key reloaded from its store is the same key
    const store = memoryStore()
    const a = X25519.loadOrCreate(store)
    expect(X25519.loadOrCreate(store).open(seal(a.publicKeyBase64, VALUE, place), place)).toBe(VALUE)
  })

  it('does not open when any one of the four bound values differs, and never says the value', () => {
    const sealed = seal(key.publicKeyBase64, VALUE, place)
    const others: SecretBinding[] = [
      { ...place, owner: 'did:plc:someoneelsesomeoneelseso' },
      { ...place, rkey: '3kzzzzzzzzzzz' },
      { ...place, name: 'OTHER' },
      { ...place, meshlet: 'did:plc:anothermeshletanothermes' },
    ]
    for (const b of others) {
      let err: Error | undefined
      try {
        key.open(sealed, b)
      } catch (e) {
        err = e as Error
      }
      expect(err, JSON.stringify(b)).toBeInstanceOf(Error)
      expect(err!.message).not.toContain(VALUE)
    }
    // nor with another meshlet's key, nor without a binding at all
    expect(() => X25519.loadOrCreate(memoryStore()).open(sealed, place)).toThrow(/does not open/)
    // @ts-expect-error: the binding is required, and checked at run time as well
    expect(() => key.open(sealed)).toThrow(/binding/)
    expect(() => key.open('bm90IHNlYWxlZA==', place)).toThrow(/not a sealed value/)
  })

  it('a v1 ciphertext (bound to nothing) no longer opens', () => {
    // the v1 construction, verbatim: HKDF info 'meshlet sealed secret v1', no associated data
    const recipient = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(key.publicKeyBase64, 'base64').toString('base64url') }, format: 'jwk' })
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519')
    const eph = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
    const shared = crypto.diffieHellman({ privateKey, publicKey: recipient })
    const k = Buffer.from(crypto.hkdfSync('sha256', shared, eph, 'meshlet sealed secret v1', 32))
    const nonce = crypto.randomBytes(12)
    const c = crypto.createCipheriv('aes-256-gcm', k, nonce)
    const body = Buffer.concat([c.update(VALUE, 'utf8'), c.final()])
    const v1 = Buffer.concat([eph, nonce, body, c.getAuthTag()]).toString('base64')
    expect(() => key.open(v1, place)).toThrow(/does not open/)
  })

  it('a replica spec binds each secret to the workload it was found in: a copy in another workload is left out', () => {
    const meshlet = 'did:plc:meshmeshmeshmeshmeshmes'
    const ann = 'did:plc:annannannannannannannann'
    const dan = 'did:plc:dandandandandandandandan'
    const annUri = `at://${ann}/${COLLECTIONS.workload}/3kannannannaa`
    const sealed = seal(key.publicKeyBase64, VALUE, secretBinding(annUri, 'TOKEN', meshlet))
    const stored = (uri: string, did: string): Stored<WorkloadRecord> => ({
      uri,
      cid: 'bafy',
      did,
      rkey: uri.split('/').pop()!,
      record: {
        $type: COLLECTIONS.workload,
        image: 'busybox',
        resources: { cpuMillis: 100, memoryMiB: 64 },
        replicas: 1,
        createdAt: new Date().toISOString(),
        secrets: [{ name: 'TOKEN', meshlet, ciphertext: sealed }],
      },
    })
    const opened: string[] = []
    const open = (name: string, ciphertext: string, b: SecretBinding) => {
      try {
        return key.open(ciphertext, b)
      } catch {
        opened.push(`${name} left out`)
        return undefined
      }
    }
    expect(replicaSpec(stored(annUri, ann), 0, meshlet, open).env).toEqual({ TOKEN: VALUE })
    // another owner's workload, another record of the same owner, and another meshlet
    expect(replicaSpec(stored(`at://${dan}/${COLLECTIONS.workload}/3kdandandanda`, dan), 0, meshlet, open).env).toEqual({})
    expect(replicaSpec(stored(`at://${ann}/${COLLECTIONS.workload}/3kannsecondaa`, ann), 0, meshlet, open).env).toEqual({})
    expect(opened).toEqual(['TOKEN left out', 'TOKEN left out'])
  })
})

describe('sealed secrets on the real PDS and Docker', () => {
  let net: DevNetwork
  let ann: Member, ben: Member, dan: Member, cat: Member
  let daemon: Meshlet
  let ownerSession: OwnerSession
  const daemonLog: string[] = []
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-secrets-'))

  beforeAll(async () => {
    await requireDocker()
    net = await startNetwork()
    ;[ann, ben, dan, cat] = await Promise.all(['ann', 'ben', 'dan', 'cat'].map((n) => addMember(net, n)))
    await formCluster('s', [ann, ben, dan])
    // ann's meshlet also lists cat, but cat's meshlet does not list ann back: cat is in ann's
    // view (its key too) and is no member
    await setCluster(ann, 'extra', [cat])
    await publishCapacity(cat, { encryptionKey: X25519.loadOrCreate(memoryStore()).publicKeyBase64 })
    // ben's meshlet runs everything, and its log is kept to check that no value reaches it
    daemon = await Meshlet.start(
      {
        service: ben.meshlet.pdsUrl,
        identifier: ben.meshlet.handle,
        password: ben.meshlet.password,
        plcUrl: net.plcUrl,
        allowInsecureHttp: true,
        dataDir,
        driver: 'docker',
        diskFloorMiB: 0,
        resources: { cpuMillis: 2000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 },
      },
      { logger: pino({ level: 'debug' }, { write: (line: string) => void daemonLog.push(line) }) },
    )
    ownerSession = await OwnerSession.login({ pds: ann.owner.pdsUrl, identifier: ann.owner.handle, password: ann.owner.password, plcUrl: net.plcUrl, allowInsecureHttp: true })
  }, 120_000)

  afterAll(async () => {
    await daemon?.close({ stopReplicas: true })
    await net?.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  const spec = (over: Record<string, unknown>) =>
    parseSpec({ image: process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest', resources: { cpu: 0.2, memory: '64Mi' }, ...over })
  const finished = (uri: string) =>
    waitFor(() => [...daemon.ctx.state.statusesFor(uri)].find((s) => s.did === ben.meshlet.did && ['succeeded', 'failed'].includes(s.record.state))?.record, {
      timeoutMs: 120_000,
      what: `a finished status for ${uri}`,
    })

  it('seals only to candidates, the rightful workload sees its secret, and a copy in another member’s workload does not open', async () => {
    // a key in view that is not a member's is never sealed to
    const { state } = await ownerSession.view()
    expect(state.capacities.get(cat.meshlet.did)?.record.encryptionKey).toBeTruthy()
    // ben's daemon wrote its first heartbeat (with its key) before Meshlet.start returned
    expect(state.capacities.get(ben.meshlet.did)?.record.encryptionKey).toBeTruthy()

    const { uri, cid } = await ownerSession.submit(spec({ command: ['sh', '-c', 'echo "token=[$TOKEN]"'], secrets: { TOKEN: VALUE } }))
    expect(cid).not.toBe('')
    const record = await ownerSession.workload(uri)
    expect(record.secrets?.map((s) => s.meshlet)).toEqual([ben.meshlet.did])
    expect(JSON.stringify(record)).not.toContain(VALUE)
    const ranking = rankCandidates((await ownerSession.view()).state, { uri, cid, did: ann.owner.did, rkey: uri.split('/').pop()!, record })
    expect(ranking.excluded.get(cat.meshlet.did)).toBe('not-a-member')

    const done = await finished(uri)
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0 })
    expect(daemon.ctx.driver!.logs(uri, 0)?.data).toContain(`token=[${VALUE}]`)

    // dan, a member too, copies ann's ciphertext into his own workload pinned to ben's meshlet
    const copied = record.secrets!.find((s) => s.meshlet === ben.meshlet.did)!
    const { uri: theft } = await dan.owner.writer.create(COLLECTIONS.workload, {
      ...spec({ command: ['sh', '-c', 'echo "token=[$TOKEN]"'], constraints: { meshlets: [ben.meshlet.did] } }).record,
      secrets: [copied],
      createdAt: new Date().toISOString(),
    })
    const stolen = await finished(theft)
    // it runs without the secret: the value reaches neither its output nor its status
    expect(stolen.state).toBe('succeeded')
    const logs = daemon.ctx.driver!.logs(theft, 0)?.data ?? ''
    expect(logs).toContain('token=[]')
    expect(logs).not.toContain(VALUE)
    expect(JSON.stringify(stolen)).not.toContain(VALUE)
    expect(daemonLog.some((l) => /did not open/.test(l) && l.includes('TOKEN'))).toBe(true)
    // nor any status record, nor the daemon's own log
    for (const s of daemon.ctx.state.statuses.values()) expect(JSON.stringify(s.record)).not.toContain(VALUE)
    expect(daemonLog.join('\n')).not.toContain(VALUE)
  }, 300_000)
})
