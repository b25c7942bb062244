// One-time pairing codes: 8 digits, valid 10 minutes, used once, void after 5 wrong
// attempts. Kept in the meshlet's LocalDb, so `meshlet pair` on the host can issue one
// whether or not the daemon runs, and the daemon sees it. Only a salted scrypt hash is
// stored: whoever copies the database cannot read a live code off it.
import { randomBytes, randomInt, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import type { LocalDb } from '../db/index.js'

export const OTP_TTL_MS = 10 * 60 * 1000
export const OTP_MAX_WRONG = 5
/** Rows kept this long after issue, so a late try can be told "expired" rather than "wrong". */
const KEEP_MS = 24 * 60 * 60 * 1000
/** Codes a try is compared with (each comparison is one scrypt). */
const COMPARE_AT_MOST = 32
// ~4 MiB and a few ms per hash: cheap for a try, slow for running through 10^8 codes
const SCRYPT = { N: 1 << 12, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
const KEY_LEN = 32

export interface IssuedCode {
  code: string
  /** ISO time the code stops working. */
  expiresAt: string
}

export type RedeemFailure =
  /** matches no code (attemptsLeft: the most any live code has left; 0 when none is live any more) */
  | { ok: false; reason: 'wrong'; attemptsLeft: number }
  | { ok: false; reason: 'expired' | 'void' | 'used' }

export type RedeemResult = { ok: true; id: number } | RedeemFailure

interface CodeRow {
  id: number
  salt: string
  hash: string
  expires_at: number
  attempts: number
  used_at: number | null
}

export class PairingCodes {
  constructor(
    private readonly db: LocalDb,
    private readonly now: () => number = Date.now,
  ) {}

  issue(): IssuedCode {
    const now = this.now()
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0')
    const salt = randomBytes(16)
    const hash = scryptSync(code, salt, KEY_LEN, SCRYPT)
    this.db.tx(() => {
      this.db.statement('DELETE FROM pairing_code WHERE issued_at < ?').run(now - KEEP_MS)
      this.db
        .statement('INSERT INTO pairing_code (salt, hash, issued_at, expires_at) VALUES (?, ?, ?, ?)')
        .run(salt.toString('base64'), hash.toString('base64'), now, now + OTP_TTL_MS)
    })
    return { code, expiresAt: new Date(now + OTP_TTL_MS).toISOString() }
  }

  /**
   * Redeems a code for `caller`. A try that redeems no live code is a wrong attempt
   * against every live code (several live codes share one budget of tries). Callers
   * serialize redemptions: two tries of one code must not both see it live.
   */
  async redeem(code: string, caller: string): Promise<RedeemResult> {
    const now = this.now()
    const rows = this.db
      .statement('SELECT id, salt, hash, expires_at, attempts, used_at FROM pairing_code WHERE issued_at >= ? ORDER BY id DESC LIMIT ?')
      .all(now - KEEP_MS, COMPARE_AT_MOST) as CodeRow[]
    let match: CodeRow | undefined
    if (/^\d{8}$/.test(code)) {
      for (const r of rows) {
        if (await matches(code, r)) {
          match = r
          break
        }
      }
    }
    if (match && isLive(match, now)) {
      const res = this.db
        .statement('UPDATE pairing_code SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND attempts < ?')
        .run(now, caller, match.id, OTP_MAX_WRONG)
      if (res.changes === 1) return { ok: true, id: match.id }
    }
    this.db
      .statement('UPDATE pairing_code SET attempts = attempts + 1 WHERE used_at IS NULL AND expires_at > ? AND attempts < ?')
      .run(now, OTP_MAX_WRONG)
    if (!match) return { ok: false, reason: 'wrong', attemptsLeft: this.attemptsLeft(now) }
    if (match.used_at !== null || isLive(match, now)) return { ok: false, reason: 'used' }
    if (match.attempts >= OTP_MAX_WRONG) return { ok: false, reason: 'void' }
    return { ok: false, reason: 'expired' }
  }

  /** Gives a redeemed code back (the link it was for could not be written): it is live again, if still in time. */
  release(id: number): void {
    this.db.statement('UPDATE pairing_code SET used_at = NULL, used_by = NULL WHERE id = ?').run(id)
  }

  /** Codes that can still be redeemed. */
  live(): number {
    const now = this.now()
    return (this.db.statement('SELECT COUNT(*) AS n FROM pairing_code WHERE used_at IS NULL AND expires_at > ? AND attempts < ?').get(now, OTP_MAX_WRONG) as { n: number }).n
  }

  private attemptsLeft(now: number): number {
    const row = this.db
      .statement('SELECT MAX(? - attempts) AS left FROM pairing_code WHERE used_at IS NULL AND expires_at > ? AND attempts < ?')
      .get(OTP_MAX_WRONG, now, OTP_MAX_WRONG) as { left: number | null }
    return row.left ?? 0
  }
}

function isLive(r: CodeRow, now: number): boolean {
  return r.used_at === null && r.expires_at > now && r.attempts < OTP_MAX_WRONG
}

function matches(code: string, r: CodeRow): Promise<boolean> {
  const expected = Buffer.from(r.hash, 'base64')
  return new Promise((resolve, reject) =>
    scrypt(code, Buffer.from(r.salt, 'base64'), KEY_LEN, SCRYPT, (err, key) => (err ? reject(err) : resolve(timingSafeEqual(key, expected)))),
  )
}
