// The executor's contract: what the placement engine asks of a driver.
import type { Resources } from '../records/index.js'

export type Tier = 'a' | 'b' | 'c'

export interface ReplicaSpec {
  /** at:// uri of the workload record */
  workloadUri: string
  /** index among this meshlet's replicas of the workload */
  replica: number
  meshletDid: string
  image: string
  command?: string[]
  env?: Record<string, string>
  /** 1000 = one core */
  cpuMillis: number
  memoryMiB: number
  storageMiB?: number
  gpus?: number
  /** default 'a' */
  tier?: Tier
  timeoutSeconds?: number
}

export type ReplicaState = 'starting' | 'running' | 'paused' | 'exited' | 'failed' | 'missing'

export interface ReplicaInfo {
  workloadUri: string
  replica: number
  meshletDid: string
  /** container id, or `pid:<n>` for the process driver */
  id: string
  state: ReplicaState
  exitCode?: number
  cpuMillis?: number
  memoryPeakBytes?: number
  startedAt?: string
  finishedAt?: string
  /** why it failed */
  message?: string
}

export interface LogPage {
  data: string
  /** absolute byte offset to continue from */
  cursor: number
  /** the requested cursor was older than what the ring still holds */
  truncated: boolean
}

export interface Driver {
  readonly name: 'docker' | 'process'
  /** Resolves once running, or with state 'failed' and a message; never hangs. */
  start(spec: ReplicaSpec): Promise<ReplicaInfo>
  /** Stops and removes; returns the final accounting. */
  stop(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined>
  pause?(workloadUri: string, replica: number): Promise<void>
  resume?(workloadUri: string, replica: number): Promise<void>
  inspect(workloadUri: string, replica: number): Promise<ReplicaInfo | undefined>
  logs(workloadUri: string, replica: number, cursor?: number, limit?: number): LogPage | undefined
  /** Replicas carrying this meshlet's label (after a restart: what it may adopt). */
  listOwn(meshletDid: string): Promise<ReplicaInfo[]>
  /**
   * Frees what a finished replica still holds (its container) once its outcome is
   * recorded; its logs stay readable until it is stopped or pushed out by newer ones.
   */
  release(workloadUri: string, replica: number): Promise<void>
  /** Adopts a replica found by listOwn: re-attaches logs and exit watching, never restarts. */
  adopt(spec: ReplicaSpec, found: ReplicaInfo): Promise<ReplicaInfo>
  /** Fired once when a replica finishes by itself, with exit code, cpu and memory. */
  onExit(listener: (info: ReplicaInfo) => void): () => void
  close(): Promise<void>
}

export type { Resources }

export const replicaKey = (workloadUri: string, replica: number): string => `${workloadUri}#${replica}`
