// One Meshlet daemon in a worker thread of its own (bench/lib/daemons.ts starts it): it
// reports the placements a benchmark watches and answers the parent's questions.
process.env.LOG_ENABLED ??= 'false'
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { Meshlet } from '../../src/daemon/meshlet.js'
import type { MeshletConfig } from '../../src/daemon/config.js'
import type { Placement } from '../../src/scheduler/placement.js'
import { silentLogger } from '../../src/util/logger.js'
import { placementSeen, type FromDaemon, type ToDaemon } from './daemons.js'

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
    const w = daemon.ctx.writer
    post({ kind: 'reply', id: m.id, ops: w.ops, commits: w.commits, failedWrites: daemon.ctx.outbox.stats.failedAttempts, capacities: daemon.ctx.state.capacities.size, loop: performance.eventLoopUtilization() })
  })()
})
post({ kind: 'ready', did: daemon.did })
