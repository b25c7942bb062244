// `meshlet drain` / `meshlet undrain`: the owner tells its meshlets, over service-authed
// XRPC, to stop (or resume) taking new work. The meshlet says so in its capacity record.
import { ownerLogin, OWNER_HELP, OWNER_OPTS, print, session, type Command, type Values } from './command.js'
import { CliError } from './errors.js'

function drainCommand(draining: boolean): Command {
  const method = draining ? 'farm.meshlet.drain' : 'farm.meshlet.undrain'
  return {
    summary: draining ? 'stop your meshlet(s) taking new work; running replicas finish' : 'let your meshlet(s) take new work again',
    usage: `meshlet ${draining ? 'drain' : 'undrain'} [--meshlet DID]
  --meshlet DID      one meshlet (default: every meshlet of yours whose link verifies)
${OWNER_HELP}`,
    options: { ...OWNER_OPTS, meshlet: { type: 'string' } },
    async run(v: Values) {
      const { parseDid } = await import('./share-args.js')
      const only = v.meshlet === undefined ? undefined : parseDid(v.meshlet, '--meshlet')
      const owner = await session(ownerLogin(v))
      const targets = only ? [only] : (await owner.view()).meshlets
      if (targets.length === 0) throw new CliError('you have no verified meshlet; pass --meshlet DID')
      const results = await Promise.allSettled(targets.map((m) => owner.client.call(m, method)))
      const done = targets.flatMap((meshlet, i) => {
        const r = results[i]
        return r.status === 'fulfilled' ? [{ meshlet, ...r.value }] : []
      })
      // the meshlets that answered are reported even when another failed
      if (done.length) print(v, only ? done[0] : done, () => done.map((d) => `${d.meshlet}: ${d.draining ? 'draining' : 'taking new work'} (${d.running} running)`).join('\n'))
      const failed = targets.flatMap((meshlet, i) => (results[i].status === 'rejected' ? [{ meshlet, err: (results[i] as PromiseRejectedResult).reason }] : []))
      if (failed.length) {
        const { meshlet, err } = failed[0]
        const e = err as { name?: string; error?: string; message?: string }
        const why = e.name === 'MeshletCallError' ? `${e.error}: ${e.message}` : String(e.message ?? err).split('\n')[0]
        throw new CliError(`${meshlet}: ${why}${failed.length > 1 ? ` (and ${failed.length - 1} more meshlet${failed.length > 2 ? 's' : ''})` : ''}`)
      }
    },
  }
}

export const drainCommands: Record<string, Command> = {
  drain: drainCommand(true),
  undrain: drainCommand(false),
}
