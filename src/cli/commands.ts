// meshlet's commands. Every command has --help and --json, and fails with one line and a
// non-zero exit.
import { parseArgs } from 'node:util'
import { CliError } from './errors.js'
import type { OwnerSession as Session, ReplicaStatus, WorkloadPlacement } from './owner.js'
import { ownerLogin, OWNER_HELP, OWNER_OPTS, print, session, type Command, type Values } from './command.js'
import type { Placement } from '../scheduler/placement.js'
import { ConfigError } from '../daemon/config.js'
import { waitFor } from '../util/time.js'
import { shareCommands } from './share.js'
import { drainCommands } from './drain.js'
import { initCommand, pairCommands } from './pair.js'
import { auditCommands } from './audit.js'
import { appviewCommands } from './appview.js'
import { networkCommands } from './network.js'

const commands: Record<string, Command> = {
  dev: {
    summary: 'run a whole commune on this machine (PLC, PDS, three meshlets, a demo workload)',
    usage: 'meshlet dev [--data-dir DIR] [--driver docker|process] [--json]',
    options: { 'data-dir': { type: 'string' }, driver: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    async run(v) {
      const { runDev } = await import('./dev.js')
      await runDev({ dataDir: v['data-dir'] as string | undefined, driver: v.driver as 'docker' | 'process' | undefined, json: Boolean(v.json) })
    },
  },
  init: initCommand,
  run: {
    summary: 'run the meshlet daemon',
    usage: `meshlet run [--config FILE] [options]
  --pds URL --handle H --password P   the meshlet account     MESHLET_PDS, MESHLET_HANDLE, MESHLET_PASSWORD
  --plc URL                           PLC directory           MESHLET_PLC_URL
  --data-dir DIR                      state (cursor, records) MESHLET_DATA_DIR
  --driver docker|process|none        executor                MESHLET_DRIVER (default docker)
  --port N --host H --public-url URL  XRPC service            MESHLET_PORT, MESHLET_HOST, MESHLET_PUBLIC_URL
  --firehose URL[,URL]                relay or PDS URLs (default: the cluster members' PDSes)  MESHLET_FIREHOSE
  --cluster NAME=DID,DID              publish a cluster record (repeatable)  MESHLET_CLUSTER (NAME=DID,DID;NAME2=...)
  --reserve-cpu MILLIS --reserve-memory MIB   held back from what is offered
  --disk-floor MIB                    decline new work under this much free disk  MESHLET_DISK_FLOOR_MIB
                                      (default max(20 % of the disk, 50 GiB); 0 turns it off)
  --write-budget POINTS               write points per hour before new work is declined  MESHLET_WRITE_BUDGET
                                      (default 4500, under a hosted PDS's 5000; 0 turns it off)
  --label KEY=VALUE                   capacity label (repeatable)
  --insecure-http                     allow http:// identity lookups (local dev networks only)`,
    options: {
      config: { type: 'string' },
      pds: { type: 'string' },
      handle: { type: 'string' },
      password: { type: 'string' },
      plc: { type: 'string' },
      'data-dir': { type: 'string' },
      driver: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'public-url': { type: 'string' },
      firehose: { type: 'string' },
      cluster: { type: 'string', multiple: true },
      'reserve-cpu': { type: 'string' },
      'reserve-memory': { type: 'string' },
      'disk-floor': { type: 'string' },
      'write-budget': { type: 'string' },
      label: { type: 'string', multiple: true },
      'insecure-http': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    async run(v) {
      const { runDaemon } = await import('./daemon.js')
      await runDaemon(v)
    },
  },
  submit: {
    summary: 'publish a workload from a spec file (JSON or YAML)',
    usage: `meshlet submit SPEC [--wait [--timeout SECONDS]]
  --wait             wait until every replica finished, through queued; a workload
                     that fails exits 1 with its reason
  --timeout SECONDS  how long --wait waits before it gives up, saying where the
                     workload stands (default 600)
${OWNER_HELP}`,
    options: { ...OWNER_OPTS, wait: { type: 'boolean' }, timeout: { type: 'string' } },
    async run(v, [file]) {
      if (!file) throw new CliError('usage: meshlet submit SPEC.json|SPEC.yaml')
      const waitSeconds = v.timeout === undefined ? DEFAULT_WAIT_SECONDS : Number(v.timeout)
      if (!Number.isInteger(waitSeconds) || waitSeconds <= 0) throw new CliError(`--timeout must be a whole number of seconds, got ${JSON.stringify(v.timeout)}`)
      if (v.timeout !== undefined && !v.wait) throw new CliError('--timeout goes with --wait')
      const spec = (await import('./spec.js')).loadSpec(file) // a bad spec fails here, before anything is written
      const owner = await session(ownerLogin(v))
      const res = await owner.submit(spec)
      if (!v.wait) return print(v, res, () => res.uri)
      const wp = await waitForFinish(owner, res.uri, waitSeconds)
      const done = finishedReplicas(wp)
      print(v, { ...res, replicas: done }, () => [res.uri, ...done.map(fmtStatus)].join('\n'))
      if (wp.placement.phase === 'failed') throw new CliError(`${res.uri} ${phaseLine(wp.placement)}`)
    },
  },
  status: {
    summary: 'show your workloads, or one workload\'s replicas and placement',
    usage: `meshlet status [URI] [--why]
  Replica states as the meshlets report them, and the placement (placing, placed,
  queued or failed, with the reason), computed here from public records with the same
  function the meshlets run.
  --why              also list every meshlet not taking a replica, and why not
                     (not linked, not a member, infeasible, stale heartbeat, declined,
                     bid rejected, ...), and the selected meshlets' state
${OWNER_HELP}`,
    options: { ...OWNER_OPTS, why: { type: 'boolean' } },
    async run(v, [uri]) {
      const owner = await session(ownerLogin(v))
      if (uri) {
        const wp = await owner.placement(uri)
        return print(v, placementJson(wp), () => [...wp.replicas.map(fmtStatus), phaseLine(wp.placement), ...(v.why ? whyLines(wp) : [])].join('\n'))
      }
      const list = await owner.placements()
      print(
        v,
        list.map((wp) => ({ name: wp.record.name, ...placementJson(wp) })),
        () =>
          list
            .map((wp) => {
              const states = wp.replicas.map((r) => r.state).join(', ')
              const head = `${wp.uri}${wp.record.name ? ` (${wp.record.name})` : ''}: ${states ? `${states}; ` : ''}${phaseLine(wp.placement)}`
              return [head, ...(v.why ? whyLines(wp).map((l) => `  ${l}`) : [])].join('\n')
            })
            .join('\n') || 'no workloads',
      )
    },
  },
  logs: {
    summary: 'print a workload replica\'s output (from the meshlet running it)',
    usage: `meshlet logs URI [--replica N] [--meshlet DID]\n${OWNER_HELP}`,
    options: { ...OWNER_OPTS, replica: { type: 'string' }, meshlet: { type: 'string' } },
    async run(v, [uri]) {
      if (!uri) throw new CliError('usage: meshlet logs URI')
      ;(await import('./owner.js')).parseWorkloadUri(uri)
      const owner = await session(ownerLogin(v))
      const replicas = await owner.statuses(uri)
      const replica = v.replica === undefined ? 0 : Number(v.replica)
      // the meshlet that ran it, not one that bid and yielded
      const ran = ['running', 'paused', 'succeeded', 'failed', 'stopped', 'scheduled']
      const target = replicas
        .filter((r) => r.replica === replica && (!v.meshlet || r.meshlet === v.meshlet) && ran.includes(r.state))
        .sort((a, b) => ran.indexOf(a.state) - ran.indexOf(b.state))[0]
      if (!target) throw new CliError(`no meshlet reports replica ${replica} of ${uri}`)
      let out = ''
      let cursor: string | undefined
      for (;;) {
        const page = await owner.client.call(target.meshlet, 'farm.meshlet.getWorkloadLogs', { uri, replica, ...(cursor ? { cursor } : {}) })
        out += page.logs
        if (page.cursor === cursor || page.logs.length === 0) break
        cursor = page.cursor
      }
      print(v, { uri, replica, meshlet: target.meshlet, logs: out }, () => out.replace(/\n$/, ''))
    },
  },
  delete: {
    summary: 'delete a workload record: every meshlet stops it',
    usage: `meshlet delete URI\n${OWNER_HELP}`,
    options: OWNER_OPTS,
    async run(v, [uri]) {
      if (!uri) throw new CliError('usage: meshlet delete URI')
      const owner = await session(ownerLogin(v))
      await owner.delete(uri)
      print(v, { uri, deleted: true }, () => `deleted ${uri}; meshlets running it stop it`)
    },
  },
  cluster: {
    summary: 'your meshlets\' cluster members: who is verified, and why others are not',
    usage: `meshlet cluster\n${OWNER_HELP}`,
    options: OWNER_OPTS,
    async run(v) {
      const owner = await session(ownerLogin(v))
      const views = await owner.cluster()
      print(v, views, () =>
        views
          .map(
            (m) =>
              `meshlet ${m.meshlet}\n` +
              (m.members.map((x) => `  ${x.verified ? '✓' : '✗'} ${x.owner} [${x.clusters.join(', ')}] ${x.verified ? `via ${x.meshlets.join(', ')}` : x.reason}`).join('\n') || '  (no cluster records)'),
          )
          .join('\n'),
      )
    },
  },
  capacity: {
    summary: 'what a meshlet offers now (yours by default)',
    usage: `meshlet capacity [DID]\n${OWNER_HELP}`,
    options: OWNER_OPTS,
    async run(v, [did]) {
      const owner = await session(ownerLogin(v))
      const targets = did ? [did] : (await owner.view()).meshlets
      if (targets.length === 0) throw new CliError('you have no verified meshlet; pass a meshlet DID')
      const caps = await Promise.all(targets.map((t) => owner.client.call(t, 'farm.meshlet.getCapacity')))
      print(v, did ? caps[0] : caps, () =>
        caps
          .map((c) => `${c.did}: ${c.allocatable.cpuMillis / 1000}/${c.total.cpuMillis / 1000} cpu, ${c.allocatable.memoryMiB}/${c.total.memoryMiB} MiB free, ${c.running} running, drivers ${c.drivers.join(',')}${c.draining ? ', draining' : ''}`)
          .join('\n'),
      )
    },
  },
  ...pairCommands,
  ...shareCommands,
  ...drainCommands,
  ...auditCommands,
  ...appviewCommands,
  ...networkCommands,
}

const DEFAULT_WAIT_SECONDS = 600
const finishedReplicas = (wp: WorkloadPlacement): ReplicaStatus[] => wp.replicas.filter((r) => ['succeeded', 'failed', 'stopped'].includes(r.state))

/**
 * Waits until every replica has finished, or the workload failed. Queued is not an end (a
 * meshlet may get room, or join, before the queue timeout), so it waits through it; one
 * still short when waiting gives up says where it stands, in one line.
 */
async function waitForFinish(owner: Session, uri: string, seconds: number): Promise<WorkloadPlacement> {
  let last: WorkloadPlacement | undefined
  return waitFor(
    async () => {
      const wp = (last = await owner.placement(uri))
      const p = wp.placement
      return p.phase === 'failed' || (p.phase === 'placed' && finishedReplicas(wp).length >= p.wanted) ? wp : undefined
    },
    { timeoutMs: seconds * 1000, intervalMs: 500, what: `${uri} to finish` },
  ).catch((err) => {
    throw last ? new CliError(`gave up waiting for ${uri} to finish after ${seconds} s: ${phaseLine(last.placement)}`) : err
  })
}

/** The placement in one line: placed 2/2, placing (waiting for answers from N meshlets), queued 1/3: why, failed: why. */
function phaseLine(p: Placement): string {
  switch (p.phase) {
    case 'placed':
      return `placed ${p.placed}/${p.wanted}`
    case 'placing':
      return `placing ${p.placed}/${p.wanted} (waiting for answers${p.invited.length ? ` from ${p.invited.length} meshlet${p.invited.length === 1 ? '' : 's'}` : ''})`
    case 'queued':
      return `queued ${p.placed}/${p.wanted}: ${p.reason}`
    case 'failed':
      return `failed: ${p.reason}`
  }
}

/** One line per meshlet: the selected ones with their replicas' state, then every other one with why it takes no replica. */
function whyLines(wp: WorkloadPlacement): string[] {
  const p = wp.placement
  const lines = p.selected.map((s) => {
    const states = wp.replicas.filter((r) => r.meshlet === s.meshlet).map((r) => `#${r.replica} ${r.state}`)
    const what = [s.replicas ? `${s.replicas} running or to run` : '', s.finished ? `${s.finished} finished` : ''].filter(Boolean).join(', ')
    const when = s.confirmed ? '' : ', waiting for answers ranked above it'
    return `${s.meshlet}  selected (round ${s.round}${when}): ${what}${states.length ? ` [${states.join(', ')}]` : ''}`
  })
  for (const w of p.whyNot) lines.push(`${w.meshlet}  ${w.reason}`)
  for (const u of wp.unreadable) lines.push(`${u.meshlet}  unreadable: ${u.detail}`)
  return lines.length ? lines : ['(no meshlet known: none of your meshlets is linked, and no cluster reaches another)']
}

function placementJson(wp: WorkloadPlacement) {
  const p = wp.placement
  return {
    uri: wp.uri,
    phase: p.phase,
    placed: p.placed,
    wanted: p.wanted,
    reason: p.reason,
    round: p.round,
    queueDeadline: new Date(p.queueDeadline).toISOString(),
    waitingFor: p.invited,
    replicas: wp.replicas,
    selected: p.selected,
    whyNot: p.whyNot,
    ...(wp.unreadable.length ? { unreadable: wp.unreadable } : {}),
  }
}

function fmtStatus(r: { meshlet: string; replica: number; state: string; exitCode?: number; cpuMillis?: number; message?: string; placed?: number }): string {
  const bits = [`${r.meshlet} #${r.replica}: ${r.state}`]
  if (r.exitCode !== undefined) bits.push(`exit ${r.exitCode}`)
  if (r.cpuMillis !== undefined) bits.push(`${(r.cpuMillis / 1000).toFixed(2)} cpu-s`)
  if (r.placed !== undefined) bits.push(`only ${r.placed} placed`)
  if (r.message) bits.push(r.message)
  return bits.join(', ')
}

function usage(): string {
  return `meshlet — a consent-based container scheduler on the AT Protocol

Usage: meshlet <command> [options]   (meshlet <command> --help for details)

${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
  .join('\n')}`
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return 0
  }
  const cmd = commands[name]
  if (!cmd) {
    console.error(`meshlet: unknown command '${name}' (try meshlet --help)`)
    return 2
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true })
    if (values.help) {
      console.log(`${cmd.summary}\n\nUsage: ${cmd.usage}`)
      return 0
    }
    await cmd.run(values as Values, positionals)
    return 0
  } catch (err) {
    console.error(`meshlet ${name}: ${oneLine(err)}`)
    return 1
  }
}

export function oneLine(err: unknown): string {
  if (err instanceof CliError || err instanceof ConfigError || (err as Error)?.name === 'SpecError') return (err as Error).message
  const call = err as { name?: string; error?: string; message?: string }
  if (call?.name === 'MeshletCallError') return `${call.error}: ${call.message}`
  const e = err as { code?: string; message?: string }
  if (e.code?.startsWith('ERR_PARSE_ARGS')) return e.message!.split('\n')[0]
  return (e.message ?? String(err)).split('\n')[0]
}
