// The meshlet's encryption key: secrets in public workload records are sealed to it
// (ephemeral X25519 + HKDF-SHA256 + AES-256-GCM), so only this meshlet can open them.
//
// A sealed value is bound to its place: the workload owner's DID, the workload record's
// key, the secret's name and the recipient meshlet's DID. The binding is the AES-GCM
// associated data, and its digest is part of the HKDF info, so a ciphertext copied into
// another workload (another owner, another record, another name) or sealed to another
// meshlet fails to open. The opener derives the binding from where it found the value
// (the workload's own uri, its own DID), never from anything the ciphertext carries.
import crypto from 'node:crypto'
import { AtUri } from '@atproto/syntax'

interface KeyStore {
  get(key: string): string | undefined
  set(key: string, value: string): void
}

/** Where a sealed value belongs. Every field is checked when it is opened. */
export interface SecretBinding {
  /** DID of the workload's owner: the repo the workload record lives in. */
  owner: string
  /** The workload record's key (a TID the CLI generates before sealing). */
  rkey: string
  /** The secret's name (the environment variable it becomes). */
  name: string
  /** DID of the meshlet the value is sealed to. */
  meshlet: string
}

/** v1 bound nothing; v2 binds owner, record key, name and meshlet. A v1 value no longer opens. */
const VERSION = 'meshlet sealed secret v2'
const EPH = 32
const NONCE = 12
const TAG = 16

/** The binding of a secret named `name` in the workload at `workloadUri`, opened by `meshletDid`. */
export function secretBinding(workloadUri: string, name: string, meshletDid: string): SecretBinding {
  const at = new AtUri(workloadUri)
  if (!at.host.startsWith('did:') || !at.rkey) throw new Error(`not a workload record uri: ${workloadUri}`)
  return { owner: at.host, rkey: at.rkey, name, meshlet: meshletDid }
}

export class X25519 {
  private constructor(private readonly privateKey: crypto.KeyObject) {}

  static loadOrCreate(store: KeyStore): X25519 {
    const saved = store.get('x25519.private')
    if (saved) {
      return new X25519(crypto.createPrivateKey({ key: Buffer.from(saved, 'base64'), format: 'der', type: 'pkcs8' }))
    }
    const { privateKey } = crypto.generateKeyPairSync('x25519')
    store.set('x25519.private', privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'))
    return new X25519(privateKey)
  }

  get publicKeyBase64(): string {
    const jwk = crypto.createPublicKey(this.privateKey).export({ format: 'jwk' })
    return Buffer.from(jwk.x!, 'base64url').toString('base64')
  }

  /**
   * Opens a value sealed to this key for exactly this binding; throws when it was sealed
   * for any other (or is not a v2 sealed value). The error never contains the value.
   */
  open(sealedBase64: string, binding: SecretBinding): string {
    // typed as required; checked too, since a sealed value must never open out of its place
    if (!binding) throw new Error('a sealed secret opens only with its binding (owner, record key, name, meshlet)')
    const buf = Buffer.from(sealedBase64, 'base64')
    if (buf.length < EPH + NONCE + TAG) throw new Error('not a sealed value: too short')
    const eph = buf.subarray(0, EPH)
    const nonce = buf.subarray(EPH, EPH + NONCE)
    const body = buf.subarray(EPH + NONCE, buf.length - TAG)
    const tag = buf.subarray(buf.length - TAG)
    const aad = encodeBinding(binding)
    const key = deriveKey(this.privateKey, rawToPublic(eph), eph, aad)
    const d = crypto.createDecipheriv('aes-256-gcm', key, nonce)
    d.setAAD(aad)
    d.setAuthTag(tag)
    try {
      return Buffer.concat([d.update(body), d.final()]).toString('utf8')
    } catch {
      throw new Error(`the sealed secret ${JSON.stringify(binding.name)} does not open here: sealed to another key, or for another workload, name or meshlet`)
    }
  }
}

/** Seals a value to a meshlet's published key (capacity.encryptionKey), for one place only. */
export function seal(recipientPublicKeyBase64: string, plaintext: string, binding: SecretBinding): string {
  const recipient = rawToPublic(Buffer.from(recipientPublicKeyBase64, 'base64'))
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519')
  const eph = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  const aad = encodeBinding(binding)
  const key = deriveKey(privateKey, recipient, eph, aad)
  const nonce = crypto.randomBytes(NONCE)
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(aad)
  const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()])
  return Buffer.concat([eph, nonce, body, c.getAuthTag()]).toString('base64')
}

/** One unambiguous byte string per binding: a JSON array cannot be read two ways. */
function encodeBinding(b: SecretBinding): Buffer {
  return Buffer.from(JSON.stringify([VERSION, b.owner, b.rkey, b.name, b.meshlet]), 'utf8')
}

function rawToPublic(raw: Buffer): crypto.KeyObject {
  if (raw.length !== EPH) throw new Error('not an X25519 public key (32 bytes)')
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' })
}

function deriveKey(priv: crypto.KeyObject, pub: crypto.KeyObject, eph: Buffer, aad: Buffer): Buffer {
  const shared = crypto.diffieHellman({ privateKey: priv, publicKey: pub })
  // the digest of the binding keeps the info short (HKDF info is limited to 1024 bytes) and
  // derives a different key for every place, on top of the associated data
  const info = Buffer.concat([Buffer.from(VERSION), Buffer.from([0]), crypto.createHash('sha256').update(aad).digest()])
  return Buffer.from(crypto.hkdfSync('sha256', shared, eph, info, 32))
}
