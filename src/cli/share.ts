// `meshlet share ...`: lend a meshlet (grants), ask for one (requests), answer (approve,
// deny). One command with subcommands: main() parses the union of their flags, and each
// subcommand refuses the flags that are not its own (share-subcommands.ts), so a
// misplaced flag is an error, never silently ignored. This module stays light: --help
// loads nothing from the atproto stack.
import { OWNER_HELP, OWNER_OPTS, type Command, type Options } from './command.js'

export const LIMIT_OPTS: Options = {
  image: { type: 'string', multiple: true },
  'max-jobs': { type: 'string' },
  cpu: { type: 'string' },
  memory: { type: 'string' },
  storage: { type: 'string' },
  gpus: { type: 'string' },
  'max-job-seconds': { type: 'string' },
  'min-free-disk': { type: 'string' },
  expires: { type: 'string' },
  'on-revoke': { type: 'string' },
  'drain-grace': { type: 'string' },
}

const USAGE = `meshlet share <subcommand> [options]
  grant --meshlet DID --to DID|HANDLE --tier a|b|c [limits]
                       lend one of your meshlets to a recipient
  list [--from DID]... grants you gave, and grants given to you by the owners you know
                       (your meshlets' cluster members, the owners you asked, --from);
                       state: active, paused, expired, revoked, lapsed (30 days unused)
  pause ID             no new work under the grant (running work continues)
  resume ID            new work under it again
  revoke ID [--kill]   no new work; running replicas drain within the grace, or with
                       --kill stop now (the record stays, with revokedAt and onRevoke)
  request --owner DID|HANDLE [--meshlet DID] [--tier a|b|c] [--message M]
                       ask an owner to lend you a meshlet
  requests [--from DID]...  requests addressed to you (from your meshlets' cluster members,
                       recipients of your grants, --from): pending, approved or denied
  requests --mine      your own requests and each owner's answer
  approve REQUEST-URI [--meshlet DID] [--tier a|b|c] [limits]
                       answer with a grant (meshlet and tier default to the request's)
  deny REQUEST-URI [--reason R]   answer with a denial
  ID is a grant's record key (see share list) or its at:// URI.
Limits (grant, approve):
  --image REF          allowed image, repeatable (none: any). A repository (busybox) allows any
                       tag or digest of exactly it; repo:tag and repo@sha256:... exactly that
  --max-jobs N         replicas of the recipient at once (default 1)
  --cpu C --memory M   per-job caps, as in a workload spec (0.5 or 500m; 512Mi, 2Gi);
  [--storage S] [--gpus G]   both --cpu and --memory when capping
  --max-job-seconds N  wall-time cap per job
  --min-free-disk MIB  the lender's disk floor
  --expires 30d|ISO    expiry: s, m, h, d or w from now, or an ISO date
  --on-revoke drain|kill   default drain
  --drain-grace S      on a drain revoke (default 60 s for tier a, 300 s for b and c)
${OWNER_HELP}`

export const shareCommands: Record<string, Command> = {
  share: {
    summary: 'lend your meshlets (grants), ask for one (requests), answer requests',
    usage: USAGE,
    options: {
      ...OWNER_OPTS,
      ...LIMIT_OPTS,
      meshlet: { type: 'string' },
      to: { type: 'string' },
      tier: { type: 'string' },
      kill: { type: 'boolean' },
      owner: { type: 'string' },
      message: { type: 'string' },
      from: { type: 'string', multiple: true },
      mine: { type: 'boolean' },
      reason: { type: 'string' },
    },
    async run(v, positionals) {
      await (await import('./share-subcommands.js')).runShare(v, positionals)
    },
  },
}

