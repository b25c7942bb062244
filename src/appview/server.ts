// The appview's HTTP shell: the commune.appview.* XRPC methods (params and outputs
// validated against their lexicons by the generated server), the dashboard's static
// pages at /, change notifications for it at /events (server-sent events), the
// settlement CSV at /ledger.csv, and Prometheus metrics at /metrics.
import express, { type NextFunction, type Request, type Response } from 'express'
import fs from 'node:fs'
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer } from '../lexicon/index.js'
import type { Logger } from '../util/logger.js'
import api from './api/index.js'
import { ledgerQuery } from './api/getLedger.js'
import type { AppviewContext } from './context.js'
import { ledger, ledgerCsv } from './ledger.js'
import { metricsHandler } from '../util/metrics.js'

export interface HttpServer {
  url: string
  close(): Promise<void>
}

/** The dashboard's files: next to this module, or (when running from dist/) in the source tree — there is no build step. */
export function dashboardDir(): string {
  const here = fileURLToPath(new URL('./dashboard/', import.meta.url))
  if (fs.existsSync(path.join(here, 'index.html'))) return here
  return fileURLToPath(new URL('../../src/appview/dashboard/', import.meta.url))
}

export async function startHttp(ctx: AppviewContext, port: number, host = '127.0.0.1'): Promise<HttpServer> {
  const xrpc = api(createServer({ validateResponse: true }), ctx)
  const app = express()
  app.disable('x-powered-by')
  app.use('/xrpc', (req: Request, res: Response, next: NextFunction) => {
    Object.assign(req, { log: requestLogger(ctx.logger) })
    // public data: any page may read it
    res.set('access-control-allow-origin', '*')
    next()
  })
  app.use(xrpc.xrpc.router)
  app.get('/metrics', metricsHandler(ctx.metrics.registry))
  app.get('/ledger.csv', (req, res) => {
    let q
    try {
      q = ledgerQuery(stringParams(req.query))
    } catch (err) {
      res.status(400).type('text/plain').send(`${(err as Error).message}\n`)
      return
    }
    const name = `meshlet-ledger-${new Date(q.from).toISOString().slice(0, 10)}-${new Date(q.to).toISOString().slice(0, 10)}-${q.period}.csv`
    res.set('content-disposition', `attachment; filename="${name}"`).type('text/csv; charset=utf-8').send(ledgerCsv(ledger(ctx.state, q)))
  })
  const clients = new Set<Response>()
  app.get('/events', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.write(`retry: 2000\nevent: change\ndata: ${JSON.stringify({ version: ctx.indexer.version })}\n\n`)
    clients.add(res)
    req.on('close', () => clients.delete(res))
  })
  app.use(express.static(dashboardDir(), { index: 'index.html', maxAge: 0 }))

  // one notification per quiet moment, not one per record: a backfill changes thousands
  let pending: NodeJS.Timeout | undefined
  const unsubscribe = ctx.indexer.onChange(() => {
    if (pending) return
    pending = setTimeout(() => {
      pending = undefined
      const msg = `event: change\ndata: ${JSON.stringify({ version: ctx.indexer.version })}\n\n`
      for (const c of clients) c.write(msg)
    }, 250)
  })
  const keepalive = setInterval(() => {
    for (const c of clients) c.write(': keepalive\n\n')
  }, 15_000)
  keepalive.unref()

  const listener: http.Server = await new Promise((resolve, reject) => {
    const l = app.listen(port, host, () => resolve(l))
    l.once('error', reject)
  })
  const addr = listener.address() as AddressInfo
  return {
    url: `http://${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${addr.port}`,
    close: () =>
      new Promise((resolve) => {
        unsubscribe()
        clearTimeout(pending)
        clearInterval(keepalive)
        for (const c of clients) c.end()
        clients.clear()
        listener.close(() => resolve())
        listener.closeAllConnections()
      }),
  }
}

function stringParams(q: Request['query']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(q)) out[k] = typeof v === 'string' ? v : undefined
  return out
}

interface LoggedXrpcError {
  nsid?: string
  status?: number
  payload?: { error?: string; message?: string }
  err?: unknown
}

/** xrpc-server logs through req.log: a bad request is the caller's business (info), error stays for faults. */
function requestLogger(logger: Logger) {
  return {
    error(obj: LoggedXrpcError, msg?: string) {
      const fields = { method: obj.nsid, status: obj.status, error: obj.payload?.error, message: obj.payload?.message }
      if ((obj.status ?? 500) >= 500) logger.error({ ...fields, err: obj.err }, msg)
      else logger.info(fields, msg)
    },
    info(obj: object, msg?: string) {
      logger.info(obj, msg)
    },
  }
}
