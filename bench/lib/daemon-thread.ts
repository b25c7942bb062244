// One Meshlet daemon in a worker thread of its own (bench/lib/daemons.ts starts it): it
// reports the placements a benchmark watches and answers the parent's questions.
process.env.LOG_ENABLED ??= 'false'
import { parentPort, workerData } from 'node:worker_threads'
import { Meshlet } from '../../src/daemon/meshlet.js'
import type { MeshletConfig } from '../../src/daemon/config.js'
import type { Placement } from '../../src/scheduler/placement.js'
import { silentLogger } from '../../src/util/logger.js'
import { countersOf, placementSeen, type FromDaemon, type ToDaemon } from './daemons.js'

const port = parentPort!
const post = (m: FromDaemon) => port.postMessage(m)
const daemon = await Meshlet.start(workerData as Partial<MeshletConfig>, { logger: silentLogger() })
daemon.ctx.engine.listeners.add((p: Placement) => {
  const seen = placementSeen(daemon.did, p)
  if (seen) post({ kind: 'placement', ...seen })
})
port.on('message', (m: ToDaemon) => {
  void (async () => {
    if (m.kind === 'idle') await daemon.ctx.engine.idle()
    if (m.kind === 'close') await daemon.close()
    post({ kind: 'reply', id: m.id, ...countersOf(daemon, m.uris) })
  })()
})
post({ kind: 'ready', did: daemon.did })
