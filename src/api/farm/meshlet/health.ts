import type { AppContext } from '../../../context.js'
import type { Server } from '../../../lexicon/index.js'
import { json } from '../../util.js'

export const VERSION = '0.1.0'

/** Public and unauthenticated: liveness and identity only. */
export default function (server: Server, ctx: AppContext) {
  server.farm.meshlet.health(async () => json({ did: ctx.did, status: ctx.draining ? 'draining' : 'ok', version: VERSION }))
}
