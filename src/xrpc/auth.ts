// atproto service auth: every method but health carries a JWT minted by the caller's
// PDS (com.atproto.server.getServiceAuth), checked against the issuer's DID document.
// Who may do what is decided from public records, never from configuration.
import type { IdResolver } from '@atproto/identity'
import { AuthRequiredError, ForbiddenError, XRPCError, verifyJwt } from '@atproto/xrpc-server'
import type { Request } from 'express'
import { ownerOfUri } from '../scheduler/fairshare.js'
import { acceptsWorkFrom, verifiedOwner } from '../scheduler/membership.js'
import type { PublicState } from '../scheduler/state.js'

export interface Caller {
  credentials: { did: string }
}

/** Returns an xrpc-server auth verifier for one method. */
export function serviceAuth(idResolver: IdResolver, meshletDid: string, lxm: string) {
  return async ({ req }: { req: Request }): Promise<Caller> => {
    const header = req.headers.authorization ?? ''
    if (!header.startsWith('Bearer ')) throw new AuthRequiredError('a service-auth bearer token is required', 'AuthMissing')
    // aud is checked here rather than by verifyJwt: PDSes mint both `did` and `did#service`.
    const payload = await verifyJwt(header.slice(7).trim(), null, lxm, async (iss, forceRefresh) => {
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
    return { credentials: { did: payload.iss.split('#')[0] } }
  }
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
