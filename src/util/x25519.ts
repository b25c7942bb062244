// The meshlet's encryption key: secrets in public workload records are sealed to it
// (ephemeral X25519 + HKDF-SHA256 + AES-256-GCM), so only this meshlet can open them.
import crypto from 'node:crypto'

interface KeyStore {
  get(key: string): string | undefined
  set(key: string, value: string): void
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

  open(sealedBase64: string): string {
    const buf = Buffer.from(sealedBase64, 'base64')
    const eph = buf.subarray(0, 32)
    const nonce = buf.subarray(32, 44)
    const body = buf.subarray(44, buf.length - 16)
    const tag = buf.subarray(buf.length - 16)
    const key = deriveKey(this.privateKey, rawToPublic(eph), eph)
    const d = crypto.createDecipheriv('aes-256-gcm', key, nonce)
    d.setAuthTag(tag)
    return Buffer.concat([d.update(body), d.final()]).toString('utf8')
  }
}

/** Seals a value to a meshlet's published key (capacity.encryptionKey). */
export function seal(recipientPublicKeyBase64: string, plaintext: string): string {
  const recipient = rawToPublic(Buffer.from(recipientPublicKeyBase64, 'base64'))
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519')
  const eph = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  const key = deriveKey(privateKey, recipient, eph)
  const nonce = crypto.randomBytes(12)
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce)
  const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()])
  return Buffer.concat([eph, nonce, body, c.getAuthTag()]).toString('base64')
}

function rawToPublic(raw: Buffer): crypto.KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' })
}

function deriveKey(priv: crypto.KeyObject, pub: crypto.KeyObject, eph: Buffer): Buffer {
  const shared = crypto.diffieHellman({ privateKey: priv, publicKey: pub })
  return Buffer.from(crypto.hkdfSync('sha256', shared, eph, 'meshlet sealed secret v1', 32))
}
