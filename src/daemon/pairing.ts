// One-time pairing codes: 8 digits, valid 10 minutes, used once.
import { randomInt } from 'node:crypto'

export const OTP_TTL_MS = 10 * 60 * 1000

export class Pairing {
  private codes = new Map<string, number>()

  constructor(private readonly now: () => number = Date.now) {}

  issue(): { otp: string; expiresAt: number } {
    const otp = String(randomInt(0, 100_000_000)).padStart(8, '0')
    const expiresAt = this.now() + OTP_TTL_MS
    this.codes.set(otp, expiresAt)
    return { otp, expiresAt }
  }

  redeem(otp: string): boolean {
    const expiresAt = this.codes.get(otp)
    this.codes.delete(otp)
    for (const [code, exp] of this.codes) if (exp <= this.now()) this.codes.delete(code)
    return expiresAt !== undefined && expiresAt > this.now()
  }
}
