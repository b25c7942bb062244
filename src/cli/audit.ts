// meshlet audit: an owner reads their meshlets' audit logs (farm.meshlet.getAuditLog).
import { ownerLogin, OWNER_HELP, OWNER_OPTS, print, session, type Command, type Values } from './command.js'
import { CliError } from './errors.js'
import type { Entry } from '../lexicon/types/farm/meshlet/getAuditLog.js'

const PAGE = 100
const MAX_LIMIT = 10_000

export function parseLimit(v: Values): number {
  if (v.limit === undefined) return 50
  const n = Number(v.limit)
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new CliError(`--limit must be a whole number from 1 to ${MAX_LIMIT}, not ${v.limit}`)
  return n
}

/** One entry on one line: when, what, how it ended, by whom, to what, and why. */
export function formatEntry(e: Entry): string {
  const d = e.detail ?? {}
  const why = [d.status, d.error, d.reason].filter((x) => x !== undefined).join(' ')
  return [e.at, e.action, e.outcome + (why ? ` (${why})` : ''), e.actor ? `by ${e.actor}` : '', e.target ? `on ${e.target}` : ''].filter(Boolean).join('  ')
}

export const auditCommands: Record<string, Command> = {
  audit: {
    summary: 'your meshlets\' audit logs: control calls, pairing, grant changes, revocations',
    usage: `meshlet audit [--meshlet DID] [--limit N]
  Newest first, read from each meshlet over XRPC (its owner only).
  --meshlet DID      one meshlet (default: every meshlet whose link to you verifies)
  --limit N          entries per meshlet (default 50, at most ${MAX_LIMIT})
${OWNER_HELP}`,
    options: { ...OWNER_OPTS, meshlet: { type: 'string' }, limit: { type: 'string' } },
    async run(v) {
      const limit = parseLimit(v)
      const owner = await session(ownerLogin(v))
      const targets = v.meshlet ? [v.meshlet as string] : (await owner.view()).meshlets
      if (targets.length === 0) throw new CliError('you have no verified meshlet; pass --meshlet DID')
      const { MeshletCallError } = await import('../xrpc/client.js')
      const logs: { meshlet: string; entries: Entry[] }[] = []
      for (const meshlet of targets) {
        const entries: Entry[] = []
        let cursor: string | undefined
        try {
          do {
            const page = await owner.client.call(meshlet, 'farm.meshlet.getAuditLog', { limit: Math.min(PAGE, limit - entries.length), ...(cursor ? { cursor } : {}) })
            entries.push(...page.entries)
            cursor = page.cursor
          } while (cursor && entries.length < limit)
        } catch (err) {
          if (!(err instanceof MeshletCallError)) throw err
          if (err.status === 403) throw new CliError(`${meshlet}: only the meshlet's owner may read its audit log`)
          throw new CliError(`${meshlet}: ${err.message}`)
        }
        logs.push({ meshlet, entries })
      }
      print(v, v.meshlet ? logs[0] : logs, () =>
        logs.map((l) => [`meshlet ${l.meshlet}`, ...(l.entries.length ? l.entries.map((e) => `  ${formatEntry(e)}`) : ['  (no entries)'])].join('\n')).join('\n'),
      )
    },
  },
}
