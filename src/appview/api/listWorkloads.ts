import { InvalidRequestError } from '@atproto/xrpc-server'
import type { Server } from '../../lexicon/index.js'
import type { AppviewContext } from '../context.js'
import { WORKLOAD_STATES } from '../views.js'
import { json } from './util.js'

/** Newest first, from the store's summaries; the cursor is the last row's (createdAt, uri). */
export default function (server: Server, ctx: AppviewContext) {
  server.commune.appview.listWorkloads({
    handler: async ({ params }) => {
      if (params.state !== undefined && !(WORKLOAD_STATES as readonly string[]).includes(params.state)) {
        throw new InvalidRequestError(`state must be one of ${WORKLOAD_STATES.join(', ')}`)
      }
      // what getWorkload already shows (it reads the records) is listed too: pending summaries first
      await ctx.indexer.summaries.flush()
      const rows = await ctx.store.listSummaries({ owner: params.owner, state: params.state, limit: params.limit + 1, before: parseCursor(params.cursor) })
      const page = rows.slice(0, params.limit)
      const last = page.at(-1)
      return json({ workloads: page.map((r) => r.view), ...(rows.length > params.limit && last ? { cursor: `${last.createdAt}|${last.uri}` } : {}) })
    },
  })
}

export function parseCursor(cursor: string | undefined): { createdAt: string; uri: string } | undefined {
  if (cursor === undefined) return undefined
  const i = cursor.indexOf('|')
  const createdAt = cursor.slice(0, i)
  const uri = cursor.slice(i + 1)
  if (i < 0 || !Number.isFinite(Date.parse(createdAt)) || !uri.startsWith('at://')) throw new InvalidRequestError('cursor is not one this appview gave')
  return { createdAt, uri }
}
