import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { intCursor, json, replicasOf } from '../../util.js'

export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.listWorkloads({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.listWorkloads'),
    handler: async ({ auth, params }) => {
      ctx.authorizer.requireOwnerOrMember(auth.credentials.did)
      const all = replicasOf(ctx)
      const start = intCursor(params.cursor, 'an offset') ?? 0
      const page = all.slice(start, start + params.limit)
      const next = start + page.length
      return json({ replicas: page, ...(next < all.length ? { cursor: String(next) } : {}) })
    },
  })
}
