// The PDS's sequencer finds new events by polling its database and, while idle, backs off
// to one poll a second (@atproto/pds sequencer pollDb/exponentialBackoff), so on a quiet
// network every firehose hop waited up to a second: most of the time from a workload's
// write to its container running (bench:e2e). A PDS this process runs is woken as soon as
// it stores an event. A PDS elsewhere keeps its own pace (docs/protocol.md, Writes).
import type { TestPds } from '@atproto/dev-env'

interface PollingSequencer {
  exponentialBackoff?: () => Promise<void>
  sequenceEvts?: (evts: readonly unknown[]) => Promise<number[]>
}

export function wakeSequencerOnWrite(pds: TestPds): void {
  const seq = pds.ctx.sequencer as unknown as PollingSequencer
  // another PDS version: leave it as it is
  if (typeof seq.exponentialBackoff !== 'function' || typeof seq.sequenceEvts !== 'function') return
  let wake: (() => void) | undefined
  const backoff = seq.exponentialBackoff.bind(seq)
  seq.exponentialBackoff = () => Promise.race([backoff(), new Promise<void>((resolve) => (wake = resolve))])
  const sequence = seq.sequenceEvts.bind(seq)
  seq.sequenceEvts = async (evts) => {
    const seqs = await sequence(evts)
    wake?.()
    return seqs
  }
}
