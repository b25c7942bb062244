import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, replicasOf, requireReplicas } from '../../util.js'

/** Stops this meshlet's replicas of a workload now (the record stays with its owner). */
export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.deleteWorkload({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.deleteWorkload'),
    handler: async ({ auth, input }) => {
      const uri = input.body.uri
      ctx.authorizer.requireWorkloadAccess(auth.credentials.did, uri)
      requireReplicas(ctx, uri)
      await ctx.engine.stopWorkload(uri, `stopped on this meshlet at the request of ${auth.credentials.did}`)
      return json({ uri, replicas: replicasOf(ctx, uri) })
    },
  })
}
