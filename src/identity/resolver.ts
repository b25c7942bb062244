import {
  DidNotFoundError,
  IdResolver,
  MemoryCache,
  PoorlyFormattedDidDocumentError,
  PoorlyFormattedDidError,
  UnsupportedDidMethodError,
  UnsupportedDidWebPathError,
} from '@atproto/identity'
import { sleep } from '../util/time.js'

export interface ResolverOptions {
  plcUrl: string
  /**
   * The default fetch refuses plain http and private addresses (SSRF protection).
   * Only a dev or test network on localhost needs this off.
   */
  allowInsecureHttp?: boolean
}

/**
 * Per request. @atproto/identity's 3 s is what a PLC directory answers in when nothing
 * else runs; on a loaded two-core machine a local PLC took longer, and a meshlet failed
 * to start ("cannot resolve … to a PDS").
 */
export const RESOLVE_TIMEOUT_MS = 10_000

export function createIdResolver(opts: ResolverOptions): IdResolver {
  return new IdResolver({
    plcUrl: opts.plcUrl,
    timeout: RESOLVE_TIMEOUT_MS,
    didCache: new MemoryCache(),
    ...(opts.allowInsecureHttp ? { fetch: globalThis.fetch } : {}),
  })
}

/** An answer about the DID itself (absent, malformed, no atproto data): asking again says the same. */
export function isSettledResolveError(err: unknown): boolean {
  return [DidNotFoundError, PoorlyFormattedDidError, UnsupportedDidMethodError, PoorlyFormattedDidDocumentError, UnsupportedDidWebPathError].some((E) => err instanceof E)
}

/** Waits between attempts when resolution failed for want of an answer (timeout, 5xx, refused connection). */
export const RESOLVE_RETRY_DELAYS_MS = [500, 1000, 2000]

/**
 * Runs a resolution, again after each delay while it fails for want of an answer; an
 * answer about the DID (not found, malformed) is final at once.
 */
export async function resolveRetrying<T>(resolve: () => Promise<T>, delaysMs: readonly number[] = RESOLVE_RETRY_DELAYS_MS): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await resolve()
    } catch (err) {
      if (isSettledResolveError(err) || attempt >= delaysMs.length) throw err
      await sleep(delaysMs[attempt])
    }
  }
}
