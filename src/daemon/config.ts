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
  /**
   * How long a finished workload's records stay in memory after its last status (default
   * 86400): then only its fair-share entries and a tombstone remain (scheduler/state.ts retire).
   */
  retentionSeconds?: number
  /** Clock difference tolerated between this meshlet and owners or other meshlets (default 5000 ms; docs/protocol.md). */
  skewMs?: number
  /**
   * New work is declined when free space on the data dir's disk, minus the work's
   * storage, would fall under this (default max(20 % of the disk, 50 GiB); 0 turns it off).
   */
  diskFloorMiB?: number
  /** How long replicas may finish after their share grant is revoked with drain, when the grant does not say (default 60 s tier a, 300 s tiers b and c). */
  drainGraceSeconds?: number | { a?: number; b?: number; c?: number }
  /**
   * Write points this meshlet's account may spend per hour (hosted PDSes allow 5,000: a
   * create costs 3, an update 2). New work is declined, with the reason, before it runs
   * out. Default 4500; 0 turns the budget off.
   */
  writePointsPerHour?: number
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
  if (c.retentionSeconds !== undefined && !(c.retentionSeconds >= 60)) {
    throw new ConfigError('retentionSeconds must be at least 60')
  }
  if (c.heartbeatSeconds !== undefined && !(c.heartbeatSeconds >= 10)) {
    throw new ConfigError('heartbeatSeconds must be at least 10')
  }
  if (c.writePointsPerHour !== undefined && !(Number.isInteger(c.writePointsPerHour) && c.writePointsPerHour >= 0)) {
    throw new ConfigError(`writePointsPerHour must be a whole number, 0 or more, not ${c.writePointsPerHour}`)
  }
  if (c.diskFloorMiB !== undefined && !(Number.isInteger(c.diskFloorMiB) && c.diskFloorMiB >= 0)) {
    throw new ConfigError(`diskFloorMiB must be a whole number of MiB, 0 or more, not ${c.diskFloorMiB}`)
  }
  if (c.drainGraceSeconds !== undefined) {
    const values = typeof c.drainGraceSeconds === 'number' ? [c.drainGraceSeconds] : Object.values(c.drainGraceSeconds ?? {})
    if (typeof c.drainGraceSeconds !== 'number' && (typeof c.drainGraceSeconds !== 'object' || c.drainGraceSeconds === null || Object.keys(c.drainGraceSeconds).some((k) => !['a', 'b', 'c'].includes(k)))) {
      throw new ConfigError('drainGraceSeconds must be a number of seconds or { a, b, c }')
    }
    if (values.some((v) => !(Number.isInteger(v) && v >= 0 && v <= 86400))) throw new ConfigError('drainGraceSeconds must be whole seconds from 0 to 86400')
  }
  return { driver: 'docker', ...c } as MeshletConfig
}

/** The drain grace per tier that a meshlet's configuration sets (for EngineOptions.drainGraceSeconds). */
export function drainGracePerTier(c: Pick<MeshletConfig, 'drainGraceSeconds'>): { a?: number; b?: number; c?: number } | undefined {
  const g = c.drainGraceSeconds
  if (g === undefined) return undefined
  return typeof g === 'number' ? { a: g, b: g, c: g } : g
}
