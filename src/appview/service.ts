// `meshlet appview`: the indexer, its store, the query methods, the dashboard and the
// metrics, wired together. `meshlet dev` starts one over its embedded commune.
import path from 'node:path'
import { createIdResolver } from '../identity/resolver.js'
import { createLogger, type Logger } from '../util/logger.js'
import type { AppviewContext } from './context.js'
import { Indexer } from './indexer.js'
import { AppviewMetrics } from './metrics.js'
import { startHttp, type HttpServer } from './server.js'
import { SqliteStore } from './sqlite-store.js'
import type { AppviewStore } from './store.js'

export interface AppviewOptions {
  /** Where the SQLite store lives (appview.sqlite). */
  dataDir: string
  /** 0 picks a free port. */
  port: number
  host?: string
  plcUrl: string
  /** Dev and test networks on http://localhost only. */
  allowInsecureHttp?: boolean
  /** Owner or meshlet DIDs to find the commune from; remembered, so a restart needs none. */
  seeds?: string[]
  /** Relay or PDS URLs; default: the PDS of every repo in the commune. */
  firehose?: string[]
  logger?: Logger
  /** The clock of health, placements and ledgers (tests move it). */
  now?: () => number
  skewMs?: number
  /** A store other than the embedded SQLite one. */
  store?: AppviewStore
  maxRepos?: number
}

export interface Appview {
  url: string
  indexer: Indexer
  ctx: AppviewContext
  close(): Promise<void>
}

export async function startAppview(opts: AppviewOptions): Promise<Appview> {
  const logger = opts.logger ?? createLogger('appview')
  const now = opts.now ?? Date.now
  const store = opts.store ?? new SqliteStore(path.join(opts.dataDir, 'appview.sqlite'))
  const metrics = new AppviewMetrics(now)
  const placement = { skewMs: opts.skewMs }
  const indexer = new Indexer({
    store,
    idResolver: createIdResolver({ plcUrl: opts.plcUrl, allowInsecureHttp: opts.allowInsecureHttp }),
    logger,
    seeds: opts.seeds,
    firehose: opts.firehose,
    metrics,
    now,
    placement,
    maxRepos: opts.maxRepos,
  })
  const ctx: AppviewContext = { indexer, store, state: indexer.state, logger, metrics, now, placement }
  let http: HttpServer | undefined
  try {
    await indexer.start()
    http = await startHttp(ctx, opts.port, opts.host)
  } catch (err) {
    await indexer.close().catch(() => undefined)
    await store.close()
    throw err
  }
  logger.info({ url: http.url, repos: indexer.repoList().length, sources: indexer.sourceUrls() }, 'appview up')
  return {
    url: http.url,
    indexer,
    ctx,
    async close() {
      await http!.close()
      await indexer.close()
      await store.close()
    },
  }
}
