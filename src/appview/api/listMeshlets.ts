import type { Server } from '../../lexicon/index.js'
import type { AppviewContext } from '../context.js'
import { meshletViews } from '../meshlets.js'
import { json } from './util.js'

export default function (server: Server, ctx: AppviewContext) {
  server.commune.appview.listMeshlets({
    handler: async ({ params }) => {
      const now = ctx.now()
      return json({ meshlets: meshletViews(ctx.state, now, { owner: params.owner, skewMs: ctx.placement.skewMs }), now: new Date(now).toISOString() })
    },
  })
}
