import { InvalidRequestError } from '@atproto/xrpc-server'
import type { Server } from '../../lexicon/index.js'
import type { AppviewContext } from '../context.js'
import { ledger, PERIODS, type Period } from '../ledger.js'
import { json } from './util.js'

export default function (server: Server, ctx: AppviewContext) {
  server.commune.appview.getLedger({
    handler: async ({ params }) => {
      const q = ledgerQuery(params)
      return json({ from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(), period: q.period, rows: ledger(ctx.state, q) })
    },
  })
}

/** Checks what the lexicon cannot: the range's order and the period's name. Shared with /ledger.csv. */
export function ledgerQuery(params: { from?: string; to?: string; period?: string; owner?: string }) {
  const from = Date.parse(params.from ?? '')
  const to = Date.parse(params.to ?? '')
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw new InvalidRequestError('from and to must be datetimes')
  if (!(from < to)) throw new InvalidRequestError('from must be before to')
  const period = (params.period ?? 'total') as Period
  if (!PERIODS.includes(period)) throw new InvalidRequestError(`period must be one of ${PERIODS.join(', ')}`)
  return { from, to, period, ...(params.owner ? { owner: params.owner } : {}) }
}
