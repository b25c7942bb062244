import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, replicasOf, requireReplicas } from '../../util.js'

export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.resumeWorkload({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.resumeWorkload'),
    handler: async ({ auth, input }) => {
      const uri = input.body.uri
      ctx.authorizer.requireWorkloadAccess(auth.credentials.did, uri)
      requireReplicas(ctx, uri)
      await ctx.engine.setPaused(uri, false)
      return json({ uri, replicas: replicasOf(ctx, uri) })
    },
  })
}
