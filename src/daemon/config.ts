// Daemon configuration: flags, environment or a config file all land here, and a
// wrong configuration fails fast with one clear line.
import type { Resources } from '../records/index.js'

export interface MeshletConfig {
  /** The meshlet account's PDS. */
  service: string
  identifier: string
  password: string
  plcUrl: string
  /** Dev and test networks on http://localhost only. */
  allowInsecureHttp?: boolean
  dataDir: string
  /** Explicit firehose sources (relay or PDS URLs); default: the PDSes of cluster members. */
  firehose?: string[]
  driver: 'docker' | 'process' | 'none'
  /** Overrides detected host resources (several meshlets on one machine, tests). */
  resources?: Resources
  /** Held back from what is offered. */
  reserve?: Resources
  labels?: { key: string; value: string }[]
  /** XRPC port; 0 picks a free one; undefined serves nothing. */
  port?: number
  /** Interface the XRPC service listens on (default 127.0.0.1). */
  host?: string
  /** Public base URL of the XRPC endpoint, published in the capacity record. */
  publicUrl?: string
  heartbeatSeconds?: number
  /** How often running containers are reconciled with the replicas won (default 60). */
  reconcileSeconds?: number
  /** Clock difference tolerated between this meshlet and owners or other meshlets (default 5000 ms; docs/protocol.md). */
  skewMs?: number
  logLevel?: string
}

export class ConfigError extends Error {}

export function checkConfig(c: Partial<MeshletConfig>): MeshletConfig {
  const missing = (['service', 'identifier', 'password', 'plcUrl', 'dataDir'] as const).filter((k) => !c[k])
  if (missing.length) throw new ConfigError(`missing configuration: ${missing.join(', ')}`)
  for (const k of ['service', 'plcUrl'] as const) {
    try {
      new URL(c[k]!)
    } catch {
      throw new ConfigError(`${k} is not a URL: ${c[k]}`)
    }
  }
  if (c.driver && !['docker', 'process', 'none'].includes(c.driver)) {
    throw new ConfigError(`driver must be docker, process or none, not ${c.driver}`)
  }
  if (c.heartbeatSeconds !== undefined && !(c.heartbeatSeconds >= 10)) {
    throw new ConfigError('heartbeatSeconds must be at least 10')
  }
  return { driver: 'docker', ...c } as MeshletConfig
}
