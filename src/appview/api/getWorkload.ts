import { InvalidRequestError } from '@atproto/xrpc-server'
import type { Server } from '../../lexicon/index.js'
import { place } from '../../scheduler/placement.js'
import type { AppviewContext } from '../context.js'
import { placementView, timeline, workloadView } from '../views.js'
import { json } from './util.js'

/** Computed now from the indexed records, with the same place() every meshlet runs. */
export default function (server: Server, ctx: AppviewContext) {
  server.commune.appview.getWorkload({
    handler: async ({ params }) => {
      const w = ctx.state.workloads.get(params.uri)
      const p = w && place(ctx.state, params.uri, ctx.now(), ctx.placement)
      if (!w || !p) throw new InvalidRequestError(`no workload record at ${params.uri}`, 'WorkloadNotFound')
      const history = await ctx.store.historyOf(params.uri)
      return json({
        workload: workloadView(ctx.state, w, p).view,
        record: w.record,
        placement: placementView(p),
        timeline: timeline(ctx.state, w, p, history),
      })
    },
  })
}
