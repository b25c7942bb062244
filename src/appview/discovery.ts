// Which repos make up a commune, from its public records only. Starting from seed DIDs
// (owners or meshlets), every record in a repo already known names more: an owner's
// meshlet records name its meshlets, a meshlet's link names its owner, its cluster
// records name member owners, grants and requests name both sides, and bids and
// statuses name the repo of the workload they answer. The commune is the closure.
// Pure: the indexer applies `references` record by record as they arrive; `closure`
// is the same rule over a whole set, for checking it.
import { AtUri } from '@atproto/syntax'
import type { Collection, RecordTypes } from '../records/index.js'

/** DIDs a record names that belong to the same commune as the repo it lives in. */
export function references<C extends Collection>(collection: C, record: RecordTypes[C]): string[] {
  const r = record as RecordTypes[Collection]
  switch (collection) {
    case 'commune.scheduler.meshlet':
      return [(r as RecordTypes['commune.scheduler.meshlet']).meshlet]
    case 'commune.scheduler.meshletOwner':
      return [(r as RecordTypes['commune.scheduler.meshletOwner']).owner]
    case 'commune.scheduler.cluster':
      return [...(r as RecordTypes['commune.scheduler.cluster']).members]
    case 'commune.scheduler.shareGrant': {
      const g = r as RecordTypes['commune.scheduler.shareGrant']
      return [g.meshlet, g.recipient]
    }
    case 'commune.scheduler.shareRequest': {
      const q = r as RecordTypes['commune.scheduler.shareRequest']
      return q.meshlet ? [q.owner, q.meshlet] : [q.owner]
    }
    case 'commune.scheduler.shareDenial':
      return [(r as RecordTypes['commune.scheduler.shareDenial']).recipient]
    case 'commune.scheduler.bid':
    case 'commune.scheduler.workloadStatus': {
      const owner = repoOf((r as RecordTypes['commune.scheduler.bid']).workload.uri)
      return owner ? [owner] : []
    }
    default:
      return []
  }
}

/** The repo (DID) of an at:// URI, or undefined for anything else. */
export function repoOf(uri: string): string | undefined {
  if (!uri.startsWith('at://')) return undefined
  try {
    const host = new AtUri(uri).host
    return host.startsWith('did:') ? host : undefined
  } catch {
    return undefined
  }
}

export interface RepoRecords {
  did: string
  records: { collection: Collection; record: RecordTypes[Collection] }[]
}

/** Every DID reachable from the seeds through the records of repos already reached, at most `max`. */
export function closure(seeds: string[], repos: Map<string, RepoRecords['records']>, max = Infinity): Set<string> {
  const out = new Set<string>()
  const queue = [...seeds]
  while (queue.length && out.size < max) {
    const did = queue.shift()!
    if (out.has(did)) continue
    out.add(did)
    for (const r of repos.get(did) ?? []) for (const ref of references(r.collection, r.record)) if (!out.has(ref)) queue.push(ref)
  }
  return out
}
