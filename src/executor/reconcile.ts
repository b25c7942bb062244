// What should run (replicas this meshlet won and has not finished) against what runs
// (containers carrying its label): adopt what belongs, remove orphans, start what is
// missing, and never start anything twice.
import { replicaKey, type Driver, type ReplicaInfo, type ReplicaSpec } from './types.js'

export interface Reconciled {
  adopted: string[]
  started: string[]
  removed: string[]
  /** desired replicas whose container had already exited: their outcome, to be recorded */
  finished: ReplicaInfo[]
}

export async function reconcile(driver: Driver, meshletDid: string, desired: ReplicaSpec[]): Promise<Reconciled> {
  const want = new Map(desired.map((s) => [replicaKey(s.workloadUri, s.replica), s]))
  const out: Reconciled = { adopted: [], started: [], removed: [], finished: [] }
  const seen = new Set<string>()
  for (const found of await driver.listOwn(meshletDid)) {
    const key = replicaKey(found.workloadUri, found.replica)
    const spec = want.get(key)
    if (!spec || seen.has(key)) {
      await driver.stop(found.workloadUri, found.replica)
      out.removed.push(key)
      continue
    }
    seen.add(key)
    const info = await driver.adopt(spec, found)
    out.adopted.push(key)
    if (info.state === 'exited' || info.state === 'failed') out.finished.push(info)
  }
  for (const [key, spec] of want) {
    if (seen.has(key)) continue
    const info = await driver.start(spec)
    out.started.push(key)
    if (info.state === 'failed') out.finished.push(info)
  }
  return out
}
