// Real meshlet daemons on a real dev network.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { MeshletConfig } from '../../src/daemon/config.js'
import { Meshlet } from '../../src/daemon/meshlet.js'
import type { DevNetwork } from '../../src/dev/network.js'
import { createLogger, silentLogger } from '../../src/util/logger.js'
import type { Member } from './commune.js'

export async function startMeshlet(net: DevNetwork, m: Member, over: Partial<MeshletConfig> = {}): Promise<Meshlet> {
  return Meshlet.start(
    {
      service: m.meshlet.pdsUrl,
      identifier: m.meshlet.handle,
      password: m.meshlet.password,
      plcUrl: net.plcUrl,
      allowInsecureHttp: true,
      dataDir: fs.mkdtempSync(path.join(os.tmpdir(), `meshlet-${m.name}-`)),
      driver: 'none',
      resources: { cpuMillis: 64000, memoryMiB: 131072, storageMiB: 10240, gpus: 0 },
      // tests never depend on this machine's free disk (the default floor is max(20 %, 50 GiB))
      diskFloorMiB: 0,
      ...over,
    },
    { logger: process.env.MESHLET_TEST_LOG ? createLogger(m.name, process.env.MESHLET_TEST_LOG) : silentLogger() },
  )
}
