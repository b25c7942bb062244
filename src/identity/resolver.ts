import { IdResolver, MemoryCache } from '@atproto/identity'

export interface ResolverOptions {
  plcUrl: string
  /**
   * The default fetch refuses plain http and private addresses (SSRF protection).
   * Only a dev or test network on localhost needs this off.
   */
  allowInsecureHttp?: boolean
}

export function createIdResolver(opts: ResolverOptions): IdResolver {
  return new IdResolver({
    plcUrl: opts.plcUrl,
    didCache: new MemoryCache(),
    ...(opts.allowInsecureHttp ? { fetch: globalThis.fetch } : {}),
  })
}
