import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, requireReplicas } from '../../util.js'

export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.getWorkloadStatus({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.getWorkloadStatus'),
    handler: async ({ auth, params }) => {
      ctx.authorizer.requireWorkloadAccess(auth.credentials.did, params.uri)
      return json({ uri: params.uri, replicas: requireReplicas(ctx, params.uri) })
    },
  })
}
