// A meshlet's view of the network without the rest of the daemon: ingestion + formation.
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'
import { ClusterFormation } from '../../src/cluster/formation.js'
import { LocalDb } from '../../src/db/index.js'
import type { DevNetwork } from '../../src/dev/network.js'
import { RepoReader } from '../../src/repo/reader.js'
import { PublicState } from '../../src/scheduler/state.js'
import { Ingestor, type RecordChange } from '../../src/sync/ingest.js'
import { silentLogger } from '../../src/util/logger.js'

export interface Observer {
  state: PublicState
  ingestor: Ingestor
  formation: ClusterFormation
  db: LocalDb
  changes: RecordChange[]
  close(): Promise<void>
}

export async function observe(net: DevNetwork, meshletDid: string, dataDir?: string): Promise<Observer> {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-obs-'))
  const db = new LocalDb(path.join(dir, 'meshlet.sqlite'))
  const state = new PublicState()
  const logger = silentLogger()
  const changes: RecordChange[] = []
  let formation: ClusterFormation | undefined
  const ingestor = new Ingestor({
    idResolver: net.idResolver,
    db,
    state,
    logger,
    onChange: (c) => {
      changes.push(c)
      formation?.onChange(c)
    },
  })
  ingestor.restore()
  formation = new ClusterFormation({ meshletDid, reader: new RepoReader(net.idResolver), state, ingestor, logger })
  await formation.bootstrap()
  return {
    state,
    ingestor,
    formation,
    db,
    changes,
    async close() {
      await ingestor.close()
      db.close()
    },
  }
}
