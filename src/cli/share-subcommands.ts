// What each `meshlet share` subcommand does, and how its answer reads. The flags are
// declared in share.ts; each subcommand names the ones it takes, and checks its input
// before it logs in, so a typo costs no network round trip.
import { ownerLogin, OWNER_OPTS, print, session, type Values } from './command.js'
import { CliError } from './errors.js'
import { LIMIT_OPTS } from './share.js'
import { grantLimits, parseDid, parseGrantId, parseRequestUri, parseTier } from './share-args.js'
import { Sharing, type GrantView, type RequestView } from './sharing.js'

const LIMITS = Object.keys(LIMIT_OPTS)

interface Sub {
  /** Flags it takes besides the owner's login options. */
  flags: string[]
  /** `connect` logs in: call it once the input is known to be good. */
  run(v: Values, args: string[], connect: () => Promise<Sharing>): Promise<void>
}

const optionalDid = (v: Values, key: string) => (v[key] === undefined ? undefined : parseDid(v[key], `--${key}`))
const optionalTier = (v: Values) => (v.tier === undefined ? undefined : parseTier(v.tier))

const subcommands: Record<string, Sub> = {
  grant: {
    flags: ['meshlet', 'to', 'tier', ...LIMITS],
    async run(v, _, connect) {
      const meshlet = parseDid(v.meshlet, '--meshlet')
      const tier = parseTier(v.tier)
      const limits = grantLimits(v, Date.now())
      if (!v.to) throw new CliError('missing --to (the recipient\'s DID or handle)')
      const s = await connect()
      const recipient = await s.resolve(v.to, '--to')
      const g = await s.grant({ meshlet, recipient, tier, limits })
      print(v, g, () => `granted ${meshlet} to ${recipient}: ${describeGrant(g)}\n${g.uri}`)
    },
  },
  list: {
    flags: ['from'],
    async run(v, _, connect) {
      const s = await connect()
      const { given, received } = await s.grants(await resolveAll(s, v.from, '--from'))
      print(v, { given, received }, () =>
        [
          'given:',
          ...(given.length ? given.map((g) => `  ${g.rkey}  ${g.state.padEnd(7)}  ${g.record.meshlet} → ${g.record.recipient}  ${describeGrant(g)}`) : ['  (none)']),
          'received:',
          ...(received.length ? received.map((g) => `  ${g.uri}  ${g.state}  ${g.record.meshlet} from ${g.owner}  ${describeGrant(g)}`) : ['  (none)']),
        ].join('\n'),
      )
    },
  },
  pause: { flags: [], run: (v, [id], connect) => setPaused(v, id, true, connect) },
  resume: { flags: [], run: (v, [id], connect) => setPaused(v, id, false, connect) },
  revoke: {
    flags: ['kill'],
    async run(v, [id], connect) {
      const grant = parseGrantId(id)
      const g = await (await connect()).revoke(grant, Boolean(v.kill))
      const what =
        g.record.onRevoke === 'kill'
          ? 'its running replicas are stopped now'
          : `its running replicas may finish within the drain grace${g.record.drainGraceSeconds !== undefined ? ` (${g.record.drainGraceSeconds} s)` : ''}`
      print(v, g, () => `revoked ${g.rkey} at ${g.record.revokedAt}: no new work; ${what}`)
    },
  },
  request: {
    flags: ['owner', 'meshlet', 'tier', 'message'],
    async run(v, _, connect) {
      const meshlet = optionalDid(v, 'meshlet')
      const tier = optionalTier(v)
      if (!v.owner) throw new CliError('missing --owner (the DID or handle of the owner you ask)')
      const s = await connect()
      const owner = await s.resolve(v.owner, '--owner')
      const r = await s.request({ owner, meshlet, tier, message: v.message as string | undefined })
      print(v, r, () => `asked ${owner} for ${meshlet ?? 'a meshlet'}${tier ? ` at tier ${tier}` : ''}: ${r.uri}\nsee the answer with: meshlet share requests --mine`)
    },
  },
  requests: {
    flags: ['from', 'mine'],
    async run(v, _, connect) {
      if (v.mine && v.from) throw new CliError('--mine reads your own requests; --from is for requests addressed to you')
      const s = await connect()
      const list = v.mine ? await s.mine() : await s.incoming(await resolveAll(s, v.from, '--from'))
      const none = v.mine ? 'you have asked no one' : 'no requests addressed to you from anyone you know (name others with --from DID)'
      print(v, list, () => list.map((r) => describeRequest(r, Boolean(v.mine))).join('\n') || none)
    },
  },
  approve: {
    flags: ['meshlet', 'tier', ...LIMITS],
    async run(v, [uri], connect) {
      const request = parseRequestUri(uri)
      const meshlet = optionalDid(v, 'meshlet')
      const tier = optionalTier(v)
      const limits = grantLimits(v, Date.now())
      const g = await (await connect()).approve(request, { meshlet, tier, limits })
      print(v, g, () => `approved: granted ${g.record.meshlet} to ${g.record.recipient}: ${describeGrant(g)}\n${g.uri}`)
    },
  },
  deny: {
    flags: ['reason'],
    async run(v, [uri], connect) {
      const request = parseRequestUri(uri)
      const d = await (await connect()).deny(request, v.reason as string | undefined)
      print(v, d, () => `denied ${d.request.uri}: ${d.uri}`)
    },
  },
}

export async function runShare(v: Values, [name, ...args]: string[]): Promise<void> {
  const sub = name ? subcommands[name] : undefined
  const names = Object.keys(subcommands).join(', ')
  if (!sub) throw new CliError(name ? `unknown subcommand '${name}' (${names})` : `missing subcommand: ${names} (meshlet share --help)`)
  const misplaced = Object.keys(v).filter((k) => v[k] !== undefined && !(k in OWNER_OPTS) && !sub.flags.includes(k))
  if (misplaced.length) throw new CliError(`share ${name} does not take ${misplaced.map((k) => `--${k}`).join(', ')}`)
  let sharing: Sharing | undefined
  try {
    await sub.run(v, args, async () => (sharing = new Sharing(await session(ownerLogin(v)))))
  } finally {
    // records that could not be read are left out of the answer: say which
    for (const k of sharing?.skipped ?? []) console.error(`meshlet share: skipped ${k.where}: ${k.detail}`)
  }
}

async function setPaused(v: Values, id: string | undefined, paused: boolean, connect: () => Promise<Sharing>): Promise<void> {
  const grant = parseGrantId(id)
  const { grant: g, changed } = await (await connect()).setPaused(grant, paused)
  const now = paused ? 'paused: no new work under it; running work continues' : 'resumed: new work may be placed under it'
  print(v, { ...g, changed }, () => `${g.rkey} ${changed ? '' : 'was already '}${now}`)
}

async function resolveAll(s: Sharing, raw: unknown, flag: string): Promise<string[]> {
  return Promise.all(((raw as string[] | undefined) ?? []).map((r) => s.resolve(r, flag)))
}

/** tier a, 2 jobs at a time, per job ≤ 0.5 cpu 512 MiB, images busybox, expires ... */
export function describeGrant(g: GrantView): string {
  const r = g.record
  const jobs = r.maxConcurrentJobs ?? 1
  const bits = [`tier ${r.tier}`, `${jobs} job${jobs === 1 ? '' : 's'} at a time`]
  if (r.caps) {
    const c = r.caps
    bits.push(`per job ≤ ${c.cpuMillis / 1000} cpu ${c.memoryMiB} MiB${c.storageMiB !== undefined ? ` ${c.storageMiB} MiB disk` : ''}${c.gpus !== undefined ? ` ${c.gpus} gpu` : ''}`)
  }
  if (r.maxJobSeconds !== undefined) bits.push(`≤ ${r.maxJobSeconds} s a job`)
  if (r.allowedImages?.length) bits.push(`images ${r.allowedImages.join(' ')}`)
  if (r.minFreeDiskMiB !== undefined) bits.push(`disk floor ${r.minFreeDiskMiB} MiB`)
  if (r.expiresAt) bits.push(`expires ${r.expiresAt}`)
  if (r.revokedAt) bits.push(`revoked ${r.revokedAt} (${r.onRevoke ?? 'drain'})`)
  else if (r.onRevoke === 'kill') bits.push('kill on revoke')
  return bits.join(', ')
}

function describeRequest(r: RequestView, mine: boolean): string {
  const who = mine ? `to ${r.record.owner}` : `from ${r.recipient}`
  const asked = [r.record.meshlet ? `meshlet ${r.record.meshlet}` : '', r.record.tier ? `tier ${r.record.tier}` : ''].filter(Boolean).join(', ')
  const head = `${r.uri}  ${r.outcome.state}  ${who}${asked ? ` (${asked})` : ''}${r.record.message ? `: ${JSON.stringify(r.record.message)}` : ''}`
  const o = r.outcome
  if (o.state === 'approved') return `${head}\n  granted ${o.grant.record.meshlet}, ${o.grant.state}: ${describeGrant(o.grant)}  ${o.grant.uri}`
  if (o.state === 'denied') return `${head}\n  denied ${o.deniedAt}${o.reason ? `: ${o.reason}` : ''}`
  return head
}
