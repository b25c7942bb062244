// Service-auth token ids (jti) already accepted, kept until the token expires: a token
// is good for one call. Kept in the LocalDb, so a restart does not reopen the window.
import type { LocalDb } from '../db/index.js'

export interface ReplayCache {
  /** Records the token; false when it was seen before (a replay). */
  firstUse(iss: string, jti: string, expSeconds: number): boolean
}

export class DbReplayCache implements ReplayCache {
  private lastPrune = 0

  constructor(
    private readonly db: LocalDb,
    private readonly now: () => number = Date.now,
  ) {}

  firstUse(iss: string, jti: string, expSeconds: number): boolean {
    const nowS = Math.floor(this.now() / 1000)
    if (nowS - this.lastPrune >= 60) {
      this.lastPrune = nowS
      this.db.statement('DELETE FROM seen_token WHERE exp < ?').run(nowS)
    }
    // keyed by issuer too: two issuers' random ids never collide into a refusal
    const res = this.db.statement('INSERT OR IGNORE INTO seen_token (key, exp) VALUES (?, ?)').run(`${iss} ${jti}`, expSeconds)
    return res.changes === 1
  }
}
