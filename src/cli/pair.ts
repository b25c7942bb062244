// meshlet pair (both sides of pairing) and meshlet init --pair. Heavy modules load
// inside run(): --help stays quick.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { need, ownerLogin, OWNER_HELP, OWNER_OPTS, print, session, type Command, type Values } from './command.js'
import { CliError } from './errors.js'

const env = process.env

/** The data dir a host-side command works on: --data-dir, else --config's, else the environment, else ~/.meshlet. */
export function hostDataDir(v: Values): string {
  const configPath = (v.config as string | undefined) ?? (v['data-dir'] ? undefined : env.MESHLET_CONFIG)
  if (configPath) {
    let dataDir: unknown
    try {
      dataDir = (JSON.parse(fs.readFileSync(configPath, 'utf8')) as { dataDir?: unknown }).dataDir
    } catch (err) {
      throw new CliError(`cannot read config ${configPath}: ${(err as Error).message.split('\n')[0]}`)
    }
    if (typeof dataDir !== 'string' || !dataDir) throw new CliError(`config ${configPath} names no dataDir`)
    return dataDir
  }
  return (v['data-dir'] as string | undefined) ?? env.MESHLET_DATA_DIR ?? path.join(os.homedir(), '.meshlet')
}

/** Strips the separators a person may type inside a code (1234 5678, 1234-5678). */
export function normalizeCode(raw: string): string {
  const code = raw.replace(/[\s-]/g, '')
  if (!/^\d{8}$/.test(code)) throw new CliError(`a pairing code is 8 digits, not ${raw}`)
  return code
}

export const pairCommands: Record<string, Command> = {
  pair: {
    summary: 'pair a meshlet with its owner by a one-time code (no config to edit)',
    usage: `meshlet pair [--data-dir DIR | --config FILE]           on the meshlet's host: print a code
       meshlet pair --meshlet DID|URL CODE [--name N]         as the owner: pair with that code
  A code is 8 digits, valid 10 minutes, used once, and void after 5 wrong tries.
  On the host it is written to the meshlet's data dir (default ~/.meshlet, or
  MESHLET_DATA_DIR): the daemon sees it whether it runs now or later ('meshlet run'
  also prints one while the meshlet has no owner).
  As the owner, the call is service-authenticated: the meshlet links itself to you
  (the caller), then your commune.scheduler.meshlet record is written and the link
  is verified both ways. --meshlet takes the meshlet's DID (its endpoint is in its
  capacity record) or the URL of its XRPC service.
  --name N           a name for the meshlet in your record
${OWNER_HELP}`,
    options: {
      ...OWNER_OPTS,
      meshlet: { type: 'string' },
      name: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
    },
    async run(v, positionals) {
      if (v.meshlet === undefined) {
        if (positionals.length) throw new CliError('to redeem a code, name the meshlet: meshlet pair --meshlet DID|URL CODE')
        return issueOnHost(v)
      }
      if (positionals.length !== 1) throw new CliError('usage: meshlet pair --meshlet DID|URL CODE')
      return pairAsOwner(v, need(v, 'meshlet'), normalizeCode(positionals[0]))
    },
  },
}

async function issueOnHost(v: Values): Promise<void> {
  const dataDir = hostDataDir(v)
  if (!fs.existsSync(path.join(dataDir, 'meshlet.sqlite')) && !fs.existsSync(path.join(dataDir, 'config.json'))) {
    throw new CliError(`no meshlet state in ${dataDir} (run meshlet init first, or pass --data-dir or --config)`)
  }
  const { issuePairingCode, pairingHint } = await import('./daemon.js')
  const issued = issuePairingCode(dataDir, 'cli')
  print(v, issued, () => pairingHint(issued.meshlet, issued))
}

async function pairAsOwner(v: Values, target: string, code: string): Promise<void> {
  const [{ MeshletCallError }, { COLLECTIONS }, { meshletRecordKey, verifyLink }, { nowIso }] = await Promise.all([
    import('../xrpc/client.js'),
    import('../records/index.js'),
    import('../identity/link.js'),
    import('../util/time.js'),
  ])
  const owner = await session(ownerLogin(v))
  let meshlet: string
  try {
    const at = await owner.client.resolve(target)
    meshlet = at.did
    const res = await owner.client.callAt(at.endpoint, at.did, 'farm.meshlet.pair', {}, { otp: code })
    if (res.owner !== owner.did) throw new CliError(`the meshlet linked itself to ${res.owner}, not to you (${owner.did})`)
  } catch (err) {
    if (!(err instanceof MeshletCallError)) throw err
    throw new CliError(err.status === 0 ? err.message : `${target} refused: ${err.message}`)
  }
  try {
    await owner.writer.put(COLLECTIONS.meshlet, meshletRecordKey(meshlet), {
      $type: COLLECTIONS.meshlet,
      meshlet,
      ...(v.name ? { name: v.name as string } : {}),
      createdAt: nowIso(),
    })
  } catch (err) {
    throw new CliError(`${meshlet} names you as its owner, but writing your meshlet record failed: ${(err as Error).message.split('\n')[0]} (pair again with a new code)`)
  }
  const verdict = await verifyLink(owner.reader, owner.did, meshlet)
  if (!verdict.ok) throw new CliError(`paired, but the link does not verify: ${verdict.reason} (${verdict.detail})`)
  print(v, { meshlet, owner: owner.did, verified: true }, () => `paired meshlet ${meshlet} with ${owner.did}; the link verifies both ways`)
}

/**
 * `meshlet init`, as commands.ts has it, plus --pair: set up the meshlet account and its
 * config without owner credentials and print a pairing code instead of writing the link.
 */
export const initCommand: Command = {
  summary: 'set up a meshlet account and its config; link it to its owner now, or print a pairing code (--pair)',
  usage: `meshlet init --meshlet-handle H --meshlet-password P [--meshlet-pds URL] [--create --email E] [--name N] [--data-dir DIR] [--pair]
  Creates the meshlet account with --create if it does not exist and saves the meshlet's
  config for 'meshlet run' in DIR/config.json (default ~/.meshlet).
  With owner credentials: writes commune.scheduler.meshletOwner (meshlet repo) and
  commune.scheduler.meshlet (owner repo) and verifies the link.
  With --pair: no owner credentials needed and no link written; prints a one-time code
  for the owner to run 'meshlet pair --meshlet DID CODE' with once 'meshlet run' serves
  XRPC (--meshlet-pds is then required, or MESHLET_PDS).
${OWNER_HELP}`,
  options: {
    ...OWNER_OPTS,
    'meshlet-pds': { type: 'string' },
    'meshlet-handle': { type: 'string' },
    'meshlet-password': { type: 'string' },
    create: { type: 'boolean' },
    email: { type: 'string' },
    name: { type: 'string' },
    'data-dir': { type: 'string' },
    pair: { type: 'boolean' },
  },
  async run(v) {
    const { init, initForPairing, pairingHint } = await import('./daemon.js')
    const dataDir = (v['data-dir'] as string) ?? path.join(os.homedir(), '.meshlet')
    const common = {
      handle: need(v, 'meshlet-handle'),
      password: need(v, 'meshlet-password'),
      create: Boolean(v.create),
      email: v.email as string | undefined,
      name: v.name as string | undefined,
      dataDir,
    }
    if (v.pair) {
      const pds = (v['meshlet-pds'] as string | undefined) ?? env.MESHLET_PDS
      if (!pds) throw new CliError('missing --meshlet-pds (the meshlet account\'s PDS; with --pair there is no owner PDS to default to)')
      const res = await initForPairing({
        ...common,
        pds,
        plcUrl: (v.plc as string) ?? env.MESHLET_PLC_URL ?? 'https://plc.directory',
        allowInsecureHttp: Boolean(v['insecure-http']) || env.MESHLET_INSECURE_HTTP === '1',
      })
      return print(v, res, () =>
        [`meshlet ${res.meshlet} set up, not linked yet; config saved to ${res.configFile}`, `next: meshlet run --config ${res.configFile} --port N`, pairingHint(res.meshlet, res.pairing)].join('\n'),
      )
    }
    const login = ownerLogin(v)
    const res = await init(login, { ...common, pds: (v['meshlet-pds'] as string) ?? login.pds })
    print(v, res, () => `linked meshlet ${res.meshlet} to owner ${res.owner}; config saved to ${res.configFile}\nnext: meshlet run --config ${res.configFile}`)
  },
}
