import { ForbiddenError, InvalidRequestError } from '@atproto/xrpc-server'
import type { AppContext } from '../../../context.js'
import { OTP_MAX_WRONG, type RedeemFailure } from '../../../daemon/pairing.js'
import type { Server } from '../../../lexicon/index.js'
import { COLLECTIONS, type MeshletOwnerRecord } from '../../../records/index.js'
import { nowIso } from '../../../util/time.js'
import { json } from '../../util.js'

const NEW_CODE = "issue a new one with 'meshlet pair' on the meshlet's host"

/**
 * Pairs this meshlet with the caller — the verified issuer of the service-auth token —
 * if the one-time code redeems: writes the meshletOwner record naming the caller.
 */
export default function (server: Server, ctx: AppContext) {
  // one redemption at a time: two tries of one code must not both find it live, and two
  // owners with two codes must not both pass the already-paired check
  let queue: Promise<unknown> = Promise.resolve()
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn)
    queue = run.catch(() => undefined)
    return run
  }

  server.farm.meshlet.pair({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.pair'),
    handler: ({ auth, input }) =>
      serialized(async () => {
        const caller = auth.credentials.did
        const attempt = (outcome: string, detail?: Record<string, unknown>) => ctx.audit({ action: 'pairing.redeem', actor: caller, outcome, detail })
        const current = ctx.state.meshletOwners.get(ctx.did)?.record.owner
        if (current && current !== caller) {
          attempt('refused', { reason: 'already-paired' })
          throw new ForbiddenError(`this meshlet is already paired with ${current}`, 'AlreadyPaired')
        }
        const res = await ctx.pairing.redeem(input.body.otp, caller)
        if (!res.ok) {
          attempt('refused', { reason: res.reason, ...(res.reason === 'wrong' ? { attemptsLeft: res.attemptsLeft } : {}) })
          throw refusal(res)
        }
        const record: MeshletOwnerRecord = { $type: COLLECTIONS.meshletOwner, owner: caller, createdAt: nowIso() }
        let written
        try {
          written = await ctx.writer.put(COLLECTIONS.meshletOwner, 'self', record)
        } catch (err) {
          // the code was not spent on anything: it may be tried again while it is valid
          ctx.pairing.release(res.id)
          attempt('error', { reason: 'write-failed', error: (err as Error).message })
          throw err
        }
        ctx.ingestor.applyRecord(COLLECTIONS.meshletOwner, { uri: written.uri, cid: written.cid ?? '', did: ctx.did, rkey: 'self', record }, true)
        attempt('paired')
        ctx.logger.info({ owner: caller }, 'paired with an owner')
        return json({ meshlet: ctx.did, owner: caller })
      }),
  })
}

function refusal(r: RedeemFailure): InvalidRequestError {
  switch (r.reason) {
    case 'wrong':
      return new InvalidRequestError(
        r.attemptsLeft > 0
          ? `wrong pairing code (${r.attemptsLeft} attempt${r.attemptsLeft === 1 ? '' : 's'} left)`
          : `wrong pairing code, and no code is live any more: ${NEW_CODE}`,
        'InvalidOtp',
      )
    case 'expired':
      return new InvalidRequestError(`pairing code expired (codes are valid 10 minutes): ${NEW_CODE}`, 'ExpiredOtp')
    case 'void':
      return new InvalidRequestError(`pairing code void after ${OTP_MAX_WRONG} wrong attempts: ${NEW_CODE}`, 'VoidOtp')
    case 'used':
      return new InvalidRequestError(`pairing code already used: ${NEW_CODE}`, 'UsedOtp')
  }
}
