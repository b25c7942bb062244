// The embedded commune a benchmark runs against, as `meshlet dev` builds it: a real PLC and
// PDS in-process, owners with linked meshlets in one mutual cluster, a Meshlet daemon each
// (real firehose, real outbox, the chosen driver).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Meshlet } from '../../src/daemon/meshlet.js'
import { DevNetwork, type DevAccount } from '../../src/dev/network.js'
import { linkMeshlet } from '../../src/identity/link.js'
import { COLLECTIONS, type Resources } from '../../src/records/index.js'
import { silentLogger } from '../../src/util/logger.js'
import { nowIso, waitFor } from '../../src/util/time.js'

export interface CommuneMember {
  owner: DevAccount
  meshlet: DevAccount
  daemon: Meshlet
}

export interface Commune {
  net: DevNetwork
  members: CommuneMember[]
  /** Stops the daemons (their containers too), the network, and removes the data dirs. */
  close(): Promise<void>
}

export async function startCommune(o: { size: number; driver: 'docker' | 'process' | 'none'; resources: Resources; cluster?: string; tmpPrefix?: string }): Promise<Commune> {
  const net = await DevNetwork.start()
  const dataDirs: string[] = []
  const daemons: Meshlet[] = []
  const close = async () => {
    await Promise.allSettled(daemons.map((d) => d.close({ stopReplicas: true })))
    await net.close().catch(() => undefined)
    for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    const accounts: { owner: DevAccount; meshlet: DevAccount }[] = []
    for (let i = 0; i < o.size; i++) {
      const owner = await net.createAccount(`o${i}`)
      const meshlet = await net.createAccount(`m${i}`)
      await linkMeshlet(owner.writer, meshlet.writer)
      accounts.push({ owner, meshlet })
    }
    for (const a of accounts) {
      await a.meshlet.writer.put(COLLECTIONS.cluster, o.cluster ?? 'bench', {
        $type: COLLECTIONS.cluster,
        members: accounts.filter((x) => x !== a).map((x) => x.owner.did),
        createdAt: nowIso(),
      })
    }
    for (const a of accounts) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), o.tmpPrefix ?? 'meshlet-bench-'))
      dataDirs.push(dataDir)
      daemons.push(
        await Meshlet.start(
          {
            service: net.pdsUrl,
            identifier: a.meshlet.handle,
            password: a.meshlet.password,
            plcUrl: net.plcUrl,
            allowInsecureHttp: true,
            dataDir,
            driver: o.driver,
            diskFloorMiB: 0,
            resources: o.resources,
          },
          { logger: silentLogger() },
        ),
      )
    }
    // ready when every meshlet sees every heartbeat and every owner link verified
    await waitFor(() => daemons.every((d) => d.ctx.state.capacities.size >= o.size && d.ctx.formation.members().filter((m) => m.verified).length >= o.size - 1), {
      timeoutMs: 60_000,
      what: 'the commune to form',
    })
    return { net, members: accounts.map((a, i) => ({ ...a, daemon: daemons[i] })), close }
  } catch (err) {
    await close()
    throw err
  }
}
