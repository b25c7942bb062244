// The farm.meshlet.* XRPC service: the HTTP shell around the methods in src/api/. The
// generated server validates parameters and bodies against the lexicons before a
// handler runs; this shell adds what every call shares: the audit entry, and logging
// that tells a refused caller from a fault of the meshlet.
import express, { type NextFunction, type Request, type Response } from 'express'
import type { AddressInfo } from 'node:net'
import type http from 'node:http'
import api from '../api/index.js'
import type { AppContext } from '../context.js'
import { createServer } from '../lexicon/index.js'
import type { Logger } from '../util/logger.js'
import { callerOf } from './auth.js'
import { metricsHandler } from '../util/metrics.js'

export { VERSION } from '../api/farm/meshlet/health.js'

export interface XrpcServer {
  url: string
  close(): Promise<void>
}

export async function startXrpc(ctx: AppContext, port: number, host = '127.0.0.1'): Promise<XrpcServer> {
  const server = api(createServer({ validateResponse: false, payload: { jsonLimit: 64 * 1024 } }), ctx)
  const app = express()
  // for a Prometheus scraper on the operator's network: counts and states, nothing secret
  app.get('/metrics', metricsHandler(ctx.metrics.registry))
  app.use(everyCall(ctx))
  app.use(server.xrpc.router)
  const listener: http.Server = await new Promise((resolve) => {
    const l = app.listen(port, host, () => resolve(l))
  })
  const addr = listener.address() as AddressInfo
  return {
    url: `http://${host === '0.0.0.0' ? 'localhost' : host}:${addr.port}`,
    close: () =>
      new Promise((resolve) => {
        listener.close(() => resolve())
        listener.closeIdleConnections()
      }),
  }
}

/** The XRPC error a response carried, as the error middleware logged it. */
interface ErrorNote {
  error?: string
  message?: string
}

const ERROR = 'meshletError'

/**
 * Audits each call when its response is done (method, verified caller, outcome), and
 * gives xrpc-server a request logger: its error middleware logs through `req.log` when
 * there is one, at error level for everything. Refusals (4xx: no token, no rights, bad
 * input) are the caller's business and go to info; error stays for the meshlet's faults.
 */
function everyCall(ctx: AppContext) {
  return (req: Request, res: Response, next: NextFunction) => {
    const nsid = /^\/xrpc\/([^/?]+)/.exec(req.path)?.[1]
    if (!nsid) return next()
    Object.assign(req, { log: requestLogger(ctx.logger, res) })
    // health is public and says nothing private: not a control action
    if (nsid !== 'farm.meshlet.health') res.once('close', () => ctx.audit(callEntry(nsid, req, res)))
    next()
  }
}

function callEntry(nsid: string, req: Request, res: Response) {
  const caller = callerOf(res)
  const status = res.statusCode
  const err = res.locals[ERROR] as ErrorNote | undefined
  const outcome = !res.writableFinished ? 'aborted' : status < 400 ? 'ok' : status < 500 ? 'refused' : 'error'
  return {
    action: nsid,
    actor: caller.did,
    target: targetOf(req),
    outcome,
    detail: {
      ...(outcome === 'ok' ? {} : { status }),
      ...(err?.error ? { error: err.error } : {}),
      ...(err?.message ? { message: err.message.slice(0, 500) } : {}),
      // the issuer a rejected token names: a claim, not a verified caller
      ...(!caller.did && caller.claimed ? { claimedCaller: caller.claimed } : {}),
    },
  }
}

/** The workload a call is about, from its parameters or (once parsed and validated) its body. */
function targetOf(req: Request): string | undefined {
  const fromQuery = req.query.uri
  const fromBody = (req.body as { uri?: unknown } | undefined)?.uri
  const uri = typeof fromQuery === 'string' ? fromQuery : typeof fromBody === 'string' ? fromBody : undefined
  return uri?.slice(0, 8192)
}

interface LoggedXrpcError {
  nsid?: string
  status?: number
  payload?: ErrorNote
  err?: unknown
}

function requestLogger(logger: Logger, res: Response) {
  return {
    error(obj: LoggedXrpcError, msg?: string) {
      res.locals[ERROR] = obj.payload
      const status = obj.status ?? 500
      const caller = callerOf(res)
      const fields = {
        method: obj.nsid,
        status,
        error: obj.payload?.error,
        caller: caller.did,
        ...(!caller.did && caller.claimed ? { claimedCaller: caller.claimed } : {}),
      }
      if (status >= 500) logger.error({ ...fields, err: obj.err }, msg)
      else logger.info(fields, msg)
    },
    info(obj: object, msg?: string) {
      logger.info(obj, msg)
    },
  }
}
