import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, replicasOf } from '../../util.js'

/** Takes new work again. Owner only. */
export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.undrain({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.undrain'),
    handler: async ({ auth }) => {
      ctx.authorizer.requireMeshletOwner(auth.credentials.did)
      await ctx.setDraining(false)
      return json({ draining: ctx.draining, running: replicasOf(ctx).filter((r) => r.state === 'running').length })
    },
  })
}
