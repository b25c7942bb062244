// atproto signature verification through Node's OpenSSL instead of @atproto/crypto's
// pure-JS curves: every meshlet verifies every commit it ingests, and profiling the
// placement bench put the JS verifier at 30 % of all CPU; OpenSSL is ~7x faster here.
//
// secp256k1 (every PDS's repo signing key) goes to bitcoin-core's libsecp256k1 through
// secp256k1-node's prebuilt N-API binding when it loads: 52 µs a verification here against
// OpenSSL's 310 µs, and verifying was a fifth of the daemons' thread in bench:placement.
//
// The rules are atproto's (what @atproto/crypto enforces by default): a did:key of
// secp256k1 or P-256, the message hashed with SHA-256, and the signature in 64-byte compact
// form with a low S — so a malleated (high-S) or DER-encoded signature fails here as it
// fails there. A key type OpenSSL cannot load falls back to @atproto/crypto.
import crypto, { type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseDidKey, verifySignature as verifyWithJs, P256_JWT_ALG, SECP256K1_JWT_ALG } from '@atproto/crypto'

/** The part of secp256k1-node's native binding used here (its package entry falls back to a JS curve; this module falls back to OpenSSL instead). */
interface Libsecp256k1 {
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, publicKey: Uint8Array): boolean
}

function loadLibsecp256k1(): Libsecp256k1 | null {
  if (process.env.MESHLET_NO_LIBSECP256K1 === '1') return null
  try {
    return createRequire(import.meta.url)('secp256k1/bindings') as Libsecp256k1
  } catch {
    return null // no prebuilt binding for this platform: OpenSSL verifies
  }
}

const libsecp256k1 = loadLibsecp256k1()

/** Which verifier checks secp256k1 signatures in this process. */
export const secp256k1Verifier: 'libsecp256k1' | 'openssl' = libsecp256k1 ? 'libsecp256k1' : 'openssl'

const CURVES: Record<string, { openssl: string; jwk: string; order: bigint }> = {
  [SECP256K1_JWT_ALG]: { openssl: 'secp256k1', jwk: 'secp256k1', order: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n },
  [P256_JWT_ALG]: { openssl: 'prime256v1', jwk: 'P-256', order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n },
}

interface LoadedKey {
  key: KeyObject
  halfOrder: bigint
  /** The compressed point, for libsecp256k1 (secp256k1 keys only). */
  compressed?: Uint8Array
}

/** A commune has a bounded number of keys in play; this bounds the cache if not. */
const MAX_KEYS = 10_000
const keys = new Map<string, LoadedKey | null>()

function load(didKey: string): LoadedKey | null {
  const cached = keys.get(didKey)
  if (cached !== undefined) return cached
  let loaded: LoadedKey | null = null
  try {
    const { jwtAlg, keyBytes } = parseDidKey(didKey)
    const curve = CURVES[jwtAlg]
    if (curve) {
      const point = crypto.ECDH.convertKey(keyBytes, curve.openssl, undefined, undefined, 'uncompressed') as Buffer
      const key = crypto.createPublicKey({
        key: { kty: 'EC', crv: curve.jwk, x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
        format: 'jwk',
      })
      loaded = { key, halfOrder: curve.order >> 1n, ...(jwtAlg === SECP256K1_JWT_ALG ? { compressed: crypto.ECDH.convertKey(keyBytes, curve.openssl, undefined, undefined, 'compressed') as Buffer } : {}) }
    }
  } catch {
    loaded = null // not loadable here: the JS verifier decides (and rejects what is malformed)
  }
  if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value as string)
  keys.set(didKey, loaded)
  return loaded
}

function bigintOf(bytes: Uint8Array): bigint {
  return BigInt('0x' + (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') || '0'))
}

/** Whether `sig` is `didKey`'s signature over `data`, by atproto's rules. */
export async function verifyDidKeySignature(didKey: string, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const loaded = load(didKey)
  if (!loaded) return verifyWithJs(didKey, data, sig)
  if (sig.length !== 64) return false // compact form only
  if (bigintOf(sig.subarray(32)) > loaded.halfOrder) return false // low S only
  if (libsecp256k1 && loaded.compressed) {
    const digest = crypto.createHash('sha256').update(data).digest()
    try {
      return libsecp256k1.ecdsaVerify(sig, digest, loaded.compressed)
    } catch {
      return false // r or s out of range: not a signature
    }
  }
  // on the event loop: handing each verification to libuv's thread pool (crypto.verify with a
  // callback) measured 1.3-1.7x the CPU per placement in bench:placement, for no gain in rate
  return crypto.verify('sha256', data, { key: loaded.key, dsaEncoding: 'ieee-p1363' }, sig)
}
