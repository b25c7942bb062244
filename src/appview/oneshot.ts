// The commune read once, without an appview: every repo found from the seeds is read
// with a verified getRepo into a throwaway in-memory store, and the ledger is computed
// from it with the same function an appview uses. This is how any member reproduces a
// settlement (docs/appview.md).
import type { LedgerRow } from '../lexicon/types/commune/appview/defs.js'
import { createIdResolver } from '../identity/resolver.js'
import { silentLogger } from '../util/logger.js'
import { Indexer } from './indexer.js'
import { ledger, type LedgerQuery } from './ledger.js'
import { SqliteStore } from './sqlite-store.js'

export async function readLedger(o: {
  seeds: string[]
  plcUrl: string
  allowInsecureHttp?: boolean
  query: LedgerQuery
  warn?: (line: string) => void
}): Promise<LedgerRow[]> {
  const store = new SqliteStore(':memory:')
  const indexer = new Indexer({
    store,
    idResolver: createIdResolver({ plcUrl: o.plcUrl, allowInsecureHttp: o.allowInsecureHttp }),
    logger: silentLogger(),
    seeds: o.seeds,
    follow: false,
  })
  try {
    await indexer.start()
    for (const r of indexer.repoList()) if (r.status === 'failed') o.warn?.(`skipped ${r.did}: ${r.error}`)
    if (indexer.stats.invalid) o.warn?.(`${indexer.stats.invalid} record(s) failed their lexicon and were skipped`)
    return ledger(indexer.state, o.query)
  } finally {
    await indexer.close()
    await store.close()
  }
}
