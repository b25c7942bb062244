// atproto service auth: every method but health carries a JWT minted by the caller's
// PDS (com.atproto.server.getServiceAuth), checked against the issuer's DID document,
// short-lived and good for one call. Who may do what is decided from public records,
// never from configuration.
import type { IdResolver } from '@atproto/identity'
import { AuthRequiredError, ForbiddenError, XRPCError, verifyJwt } from '@atproto/xrpc-server'
import type { Request, Response } from 'express'
import { ownerOfUri } from '../scheduler/fairshare.js'
import { acceptsWorkFrom, verifiedOwner } from '../scheduler/membership.js'
import type { PublicState } from '../scheduler/state.js'
import type { ReplayCache } from './replay.js'

export interface Caller {
  credentials: { did: string }
}

/**
 * Longest lifetime (exp − iat) accepted. A PDS mints 60 s by default
 * (com.atproto.server.getServiceAuth without exp) but up to an hour on request; a token
 * that lives long is a token that leaks long, and MeshletClient asks for a fresh one per call.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 300
/** Clock difference tolerated between the caller's PDS and this meshlet. */
const CLOCK_SKEW_SECONDS = 30

export interface AuthVerifierOptions {
  idResolver: IdResolver
  meshletDid: string
  replay: ReplayCache
  maxLifetimeSeconds?: number
  now?: () => number
}

/** Verifies atproto service-auth tokens for this meshlet: signature, audience, method, lifetime, single use. */
export class AuthVerifier {
  constructor(private readonly opts: AuthVerifierOptions) {}

  /** An xrpc-server auth verifier for one method. */
  serviceAuth(lxm: string) {
    return async ({ req, res }: { req: Request; res: Response }): Promise<Caller> => {
      const header = req.headers.authorization ?? ''
      if (!header.startsWith('Bearer ')) throw new AuthRequiredError('a service-auth bearer token is required', 'AuthMissing')
      const token = header.slice(7).trim()
      const claims = decodeClaims(token)
      // for the log and the audit only, until the signature says it is true
      if (claims?.iss) noteCaller(res, { claimed: claims.iss.split('#')[0] })
      const { idResolver, meshletDid } = this.opts
      // aud is checked here rather than by verifyJwt: PDSes mint both `did` and `did#service`.
      const payload = await verifyJwt(token, null, lxm, async (iss, forceRefresh) => {
        const key = await idResolver.did.resolveAtprotoKey(iss.split('#')[0], forceRefresh).catch(() => undefined)
        if (!key) throw new AuthRequiredError(`cannot resolve a signing key for ${iss}`, 'UntrustedIss')
        return key
      }).catch((err: unknown) => {
        if (err instanceof XRPCError) throw err
        throw new AuthRequiredError('malformed service-auth token', 'BadJwt')
      })
      if (payload.aud !== meshletDid && !payload.aud.startsWith(`${meshletDid}#`)) {
        throw new AuthRequiredError('jwt audience does not match this meshlet', 'BadJwtAudience')
      }
      const now = Math.floor((this.opts.now ?? Date.now)() / 1000)
      const max = this.opts.maxLifetimeSeconds ?? MAX_TOKEN_LIFETIME_SECONDS
      const iat = typeof claims?.iat === 'number' ? claims.iat : now
      if (payload.exp - iat > max || payload.exp - now > max + CLOCK_SKEW_SECONDS) {
        throw new AuthRequiredError(`service-auth token lives longer than ${max} s; ask for a shorter one`, 'JwtLifetimeTooLong')
      }
      if (!payload.jti) throw new AuthRequiredError('service-auth token has no jti (needed to refuse replays)', 'BadJwt')
      const did = payload.iss.split('#')[0]
      if (!this.opts.replay.firstUse(did, payload.jti, payload.exp)) {
        throw new AuthRequiredError('service-auth token already used; ask for a fresh one per call', 'JwtReplayed')
      }
      noteCaller(res, { did })
      return { credentials: { did } }
    }
  }
}

/** The payload claims, unverified: for iat (which verifyJwt does not return) and for logging a claimed caller. */
function decodeClaims(token: string): { iss?: string; iat?: number } | undefined {
  try {
    const c = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown
    if (!c || typeof c !== 'object') return undefined
    const { iss, iat } = c as { iss?: unknown; iat?: unknown }
    return { ...(typeof iss === 'string' ? { iss } : {}), ...(typeof iat === 'number' ? { iat } : {}) }
  } catch {
    return undefined
  }
}

/** Who called, as far as auth got: `did` once verified, `claimed` when only the token says so. */
export interface CallerNote {
  did?: string
  claimed?: string
}

const CALLER = 'meshletCaller'

function noteCaller(res: Response, note: CallerNote): void {
  res.locals[CALLER] = { ...(res.locals[CALLER] as CallerNote | undefined), ...note }
}

export function callerOf(res: Response): CallerNote {
  return (res.locals[CALLER] as CallerNote | undefined) ?? {}
}

export class Authorizer {
  constructor(
    private readonly state: PublicState,
    private readonly meshletDid: string,
  ) {}

  isMeshletOwner(did: string): boolean {
    return verifiedOwner(this.state, this.meshletDid) === did
  }

  isWorkloadOwner(did: string, workloadUri: string): boolean {
    return ownerOfUri(workloadUri) === did
  }

  /** A mutually verified cluster member (an owner, or a meshlet whose owner is one). */
  isMember(did: string): boolean {
    const owner = verifiedOwner(this.state, did) ?? did
    return acceptsWorkFrom(this.state, this.meshletDid, owner)
  }

  requireMeshletOwner(did: string): void {
    if (!this.isMeshletOwner(did)) throw new ForbiddenError('only this meshlet\'s owner may do this')
  }

  requireOwnerOrMember(did: string): void {
    if (!this.isMeshletOwner(did) && !this.isMember(did)) {
      throw new ForbiddenError('only this meshlet\'s owner and its verified cluster members may do this')
    }
  }

  requireWorkloadAccess(did: string, workloadUri: string): void {
    if (!this.isMeshletOwner(did) && !this.isWorkloadOwner(did, workloadUri)) {
      throw new ForbiddenError('only the workload\'s owner and this meshlet\'s owner may do this')
    }
  }
}
