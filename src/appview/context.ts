// What the appview's query methods and pages share, built once by the service
// (service.ts). The methods (api/) are functions of the XRPC server and this context.
import type { Logger } from 'pino'
import type { PlacementOptions } from '../scheduler/placement.js'
import type { PublicState } from '../scheduler/state.js'
import type { Indexer } from './indexer.js'
import type { AppviewMetrics } from './metrics.js'
import type { AppviewStore } from './store.js'

export interface AppviewContext {
  indexer: Indexer
  store: AppviewStore
  /** The indexed records, as the placement function reads them. */
  state: PublicState
  logger: Logger
  metrics: AppviewMetrics
  /** The clock health, placements and default ledger ranges are judged at. */
  now: () => number
  placement: PlacementOptions
}
