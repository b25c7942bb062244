import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json, replicasOf } from '../../util.js'

export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.getCapacity({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.getCapacity'),
    handler: async ({ auth }) => {
      ctx.authorizer.requireOwnerOrMember(auth.credentials.did)
      const cap = ctx.capacityRecord()
      return json({
        did: ctx.did,
        owner: ctx.state.meshletOwners.get(ctx.did)?.record.owner,
        total: cap.total,
        allocatable: cap.allocatable,
        gpus: cap.gpus,
        drivers: cap.drivers,
        draining: ctx.draining,
        running: replicasOf(ctx).filter((r) => r.state === 'running' || r.state === 'scheduled' || r.state === 'paused').length,
      })
    },
  })
}
