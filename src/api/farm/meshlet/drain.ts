import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, replicasOf } from '../../util.js'

/** No new work here; running replicas finish. Owner only. */
export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.drain({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.drain'),
    handler: async ({ auth }) => {
      ctx.authorizer.requireMeshletOwner(auth.credentials.did)
      await ctx.setDraining(true)
      return json({ draining: ctx.draining, running: replicasOf(ctx).filter((r) => r.state === 'running').length })
    },
  })
}
