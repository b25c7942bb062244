// What a meshlet's parts share, built once by the daemon (src/daemon/meshlet.ts). The
// XRPC methods (src/api/) are functions of the server and this context: they never
// import the daemon, so the daemon can import the server without a cycle.
import type { IdResolver } from '@atproto/identity'
import type { ClusterFormation } from './cluster/formation.js'
import type { AuditFn, AuditLog } from './daemon/audit.js'
import type { MeshletConfig } from './daemon/config.js'
import type { PlacementEngine } from './daemon/engine.js'
import type { PairingCodes } from './daemon/pairing.js'
import type { LocalDb } from './db/index.js'
import type { Host } from './executor/capacity.js'
import type { Driver } from './executor/types.js'
import type { CapacityRecord, Resources } from './records/index.js'
import type { Outbox } from './repo/outbox.js'
import type { RepoReader } from './repo/reader.js'
import type { RepoWriter } from './repo/writer.js'
import type { PublicState } from './scheduler/state.js'
import type { Ingestor } from './sync/ingest.js'
import type { Logger } from './util/logger.js'
import type { X25519 } from './util/x25519.js'
import type { Authorizer, AuthVerifier } from './xrpc/auth.js'
import type { DaemonMetrics } from './daemon/metrics.js'

export interface AppContext {
  cfg: MeshletConfig
  did: string
  logger: Logger
  db: LocalDb
  idResolver: IdResolver
  state: PublicState
  reader: RepoReader
  writer: RepoWriter
  outbox: Outbox
  ingestor: Ingestor
  formation: ClusterFormation
  engine: PlacementEngine
  driver?: Driver
  total: Resources
  host: Host
  draining: boolean
  encryptionKey: X25519
  /** When this daemon began heartbeating: late joiners rank after meshlets that were online (docs/protocol.md). */
  onlineSince: string
  /** Service-auth verification for the XRPC methods (signature, audience, method, lifetime, single use). */
  authVerifier: AuthVerifier
  /** Who may do what, from public records. */
  authorizer: Authorizer
  pairing: PairingCodes
  auditLog: AuditLog
  /** Appends to the audit log; never throws. */
  audit: AuditFn
  /** This meshlet's capacity record as it would publish it now. */
  capacityRecord(): CapacityRecord
  /** Stops or resumes taking new work, and says so in the capacity record. */
  setDraining(draining: boolean): Promise<void>
  /** Prometheus metrics, served at /metrics. */
  metrics: DaemonMetrics
}
