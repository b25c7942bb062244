import { InvalidRequestError } from '@atproto/xrpc-server'
import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { intCursor, json, requireReplicas } from '../../util.js'

export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.getWorkloadLogs({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.getWorkloadLogs'),
    handler: async ({ auth, params }) => {
      ctx.authorizer.requireWorkloadAccess(auth.credentials.did, params.uri)
      const replicas = requireReplicas(ctx, params.uri)
      if (!replicas.some((r) => r.replica === params.replica)) {
        throw new InvalidRequestError(`no replica ${params.replica} of ${params.uri} here`, 'WorkloadNotFound')
      }
      const cursor = intCursor(params.cursor, 'a byte offset') ?? 0
      const out = ctx.driver?.logs(params.uri, params.replica, cursor, params.limit)
      return json({
        uri: params.uri,
        replica: params.replica,
        logs: out?.data ?? '',
        cursor: String(out?.cursor ?? cursor),
        ...(out?.truncated ? { truncated: true } : {}),
      })
    },
  })
}
