import Docker from 'dockerode'
import type { Logger } from 'pino'
import { DockerDriver } from './docker.js'
import { ProcessDriver } from './process.js'
import type { Driver } from './types.js'

export type { Driver, ReplicaInfo, ReplicaSpec } from './types.js'

export async function createDriver(name: 'docker' | 'process', opts: { meshletDid?: string; logger?: Logger; dataDir?: string } = {}): Promise<Driver> {
  return name === 'docker' ? new DockerDriver({ meshletDid: opts.meshletDid, logger: opts.logger }) : new ProcessDriver(opts)
}

/** True when a Docker engine answers within a short time. */
export async function dockerAvailable(docker = new Docker(), timeoutMs = 2000): Promise<boolean> {
  let t: NodeJS.Timeout | undefined
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => (t = setTimeout(() => reject(new Error('timeout')), timeoutMs)))])
    return true
  } catch {
    return false
  } finally {
    clearTimeout(t)
  }
}
