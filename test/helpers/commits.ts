// The commits a real PDS's firehose carries for commune.scheduler records, as @atproto/sync
// parses them (block CIDs checked, nothing else), for tests that prove or tamper with them.
import { Firehose, type CommitEvt } from '@atproto/sync'
import type { DevNetwork } from '../../src/dev/network.js'
import { waitFor } from '../../src/util/time.js'

export interface CommitWatch {
  events: CommitEvt[]
  /** The first event of this kind for this record, once the firehose carried it. */
  eventFor(uri: string, kind: CommitEvt['event']): Promise<CommitEvt>
  close(): Promise<void>
}

export function watchCommits(net: DevNetwork): CommitWatch {
  const events: CommitEvt[] = []
  const hose = new Firehose({
    idResolver: net.idResolver,
    service: net.pdsUrl.replace(/^http/, 'ws'),
    filterCollections: ['commune.scheduler.*'],
    unauthenticatedCommits: true,
    excludeIdentity: true,
    excludeAccount: true,
    excludeSync: true,
    handleEvent: async (evt) => {
      if (evt.event === 'create' || evt.event === 'update' || evt.event === 'delete') events.push(evt)
    },
    onError: () => undefined,
  })
  void hose.start()
  return {
    events,
    async eventFor(uri, kind) {
      let found: CommitEvt | undefined
      await waitFor(() => (found = events.find((e) => e.uri.toString() === uri && e.event === kind)) !== undefined, { timeoutMs: 30_000, what: `the firehose to carry ${kind} ${uri}` })
      return found!
    },
    close: () => hose.destroy(),
  }
}
