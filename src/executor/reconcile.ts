// What runs here (containers carrying this meshlet's label) against what the engine says
// may run: adopt what belongs, remove what does not, and report what finished while
// nobody watched. Nothing is started here: starting is the engine's decision (decide()),
// so a container that vanished is never brought back behind the placement's back.
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec } from './types.js'

export interface Reconciled {
  /** replicas adopted and still running */
  adopted: ReplicaInfo[]
  /** adopted replicas whose container had already exited: their outcome, to be recorded */
  finished: ReplicaInfo[]
  /** keys of containers removed because nothing here holds them */
  removed: string[]
}

/**
 * `keep` returns the spec of a found replica this meshlet still holds (to re-attach logs
 * and exit watching), or undefined for an orphan. `skip` leaves a replica alone (one the
 * engine is starting right now).
 */
export async function reconcile(
  driver: Driver,
  meshletDid: string,
  keep: (found: ReplicaInfo) => ReplicaSpec | undefined,
  skip: (found: ReplicaInfo) => boolean = () => false,
): Promise<Reconciled> {
  const out: Reconciled = { adopted: [], finished: [], removed: [] }
  const seen = new Set<string>()
  for (const found of await driver.listOwn(meshletDid)) {
    const key = replicaKey(found.workloadUri, found.replica)
    if (skip(found)) continue
    const spec = seen.has(key) ? undefined : keep(found)
    if (!spec) {
      await driver.stop(found.workloadUri, found.replica).catch(() => undefined)
      out.removed.push(key)
      continue
    }
    seen.add(key)
    const info = await driver.adopt(spec, found)
    if (info.state === 'exited' || info.state === 'failed') out.finished.push(info)
    else out.adopted.push(info)
  }
  return out
}
