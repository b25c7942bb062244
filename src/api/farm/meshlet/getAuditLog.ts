import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { intCursor, json } from '../../util.js'

/** The local audit log, newest first. Owner only. */
export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.getAuditLog({
    auth: ctx.authVerifier.serviceAuth('farm.meshlet.getAuditLog'),
    handler: async ({ auth, params }) => {
      ctx.authorizer.requireMeshletOwner(auth.credentials.did)
      const before = intCursor(params.cursor, 'an entry id')
      return json(ctx.auditLog.list({ limit: params.limit, before }))
    },
  })
}
