// meshlet init and meshlet run.
import { AtpAgent } from '@atproto/api'
import fs from 'node:fs'
import path from 'node:path'
import { checkConfig, ConfigError, type MeshletConfig } from '../daemon/config.js'
import { AuditLog } from '../daemon/audit.js'
import { PairingCodes, type IssuedCode } from '../daemon/pairing.js'
import { chmodIfExists, LocalDb, makePrivateDir } from '../db/index.js'
import { linkMeshlet, verifyLink } from '../identity/link.js'
import { COLLECTIONS } from '../records/index.js'
import { RepoWriter } from '../repo/writer.js'
import { nowIso } from '../util/time.js'
import { CliError, OwnerSession, type OwnerLogin } from './owner.js'

export interface InitOptions {
  pds: string
  handle: string
  password: string
  create: boolean
  email?: string
  name?: string
  dataDir: string
}

export async function init(ownerLogin: OwnerLogin, o: InitOptions) {
  const owner = await OwnerSession.login(ownerLogin)
  const meshlet = await loginOrCreate(o)
  await linkMeshlet(owner.writer, meshlet, o.name)
  const verdict = await verifyLink(owner.reader, owner.did, meshlet.did)
  if (!verdict.ok) throw new CliError(`link written but does not verify: ${verdict.reason} (${verdict.detail})`)
  const configFile = saveConfig(o, meshlet.did, ownerLogin)
  return { meshlet: meshlet.did, owner: owner.did, configFile }
}

/**
 * `meshlet init --pair`: the meshlet account and its config, no owner credentials and
 * no link. The owner links it later with the one-time code printed here (or by
 * `meshlet run`, or `meshlet pair` on this host) and `meshlet pair --meshlet DID CODE`.
 */
export async function initForPairing(o: InitOptions & { plcUrl: string; allowInsecureHttp?: boolean }) {
  const meshlet = await loginOrCreate(o)
  const configFile = saveConfig(o, meshlet.did, o)
  const pairing = issuePairingCode(o.dataDir, 'init', meshlet.did)
  return { meshlet: meshlet.did, configFile, pairing }
}

/** Saves what `meshlet run --config` needs; the file holds the meshlet's app password, so it and its directory are its user's only. */
function saveConfig(o: InitOptions, meshletDid: string, identity: { plcUrl: string; allowInsecureHttp?: boolean }): string {
  makePrivateDir(o.dataDir)
  const configFile = path.join(o.dataDir, 'config.json')
  const config: Partial<MeshletConfig> = {
    service: o.pds,
    identifier: meshletDid,
    password: o.password,
    plcUrl: identity.plcUrl,
    allowInsecureHttp: identity.allowInsecureHttp,
    dataDir: o.dataDir,
    driver: 'docker',
  }
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
  // the mode above applies only to a new file: an older one is narrowed too
  fs.chmodSync(configFile, 0o600)
  return configFile
}

/** Issues a pairing code into a data dir's database (the daemon, running or not, redeems it there). */
export function issuePairingCode(dataDir: string, via: string, meshletDid?: string): IssuedCode & { meshlet?: string } {
  const db = new LocalDb(path.join(dataDir, 'meshlet.sqlite'))
  try {
    if (meshletDid) db.set('self.did', meshletDid)
    const issued = new PairingCodes(db).issue()
    new AuditLog(db).append({ action: 'pairing.issue', outcome: 'ok', detail: { via, expiresAt: issued.expiresAt } })
    const meshlet = meshletDid ?? db.get('self.did')
    return { ...issued, ...(meshlet ? { meshlet } : {}) }
  } finally {
    db.close()
  }
}

async function loginOrCreate(o: InitOptions): Promise<RepoWriter> {
  try {
    return await RepoWriter.login(o.pds, o.handle, o.password)
  } catch (err) {
    const e = err as { status?: number; message: string }
    if (e.status !== 401 && e.status !== 400) throw new CliError(`cannot reach the PDS at ${o.pds}: ${e.message}`)
    if (!o.create) throw new CliError(`cannot log in as ${o.handle} (pass --create to create the meshlet account)`)
  }
  const agent = new AtpAgent({ service: o.pds })
  try {
    const res = await agent.createAccount({ handle: o.handle, password: o.password, email: o.email ?? `${o.handle}@invalid.example` })
    return new RepoWriter(agent, res.data.did)
  } catch (err) {
    throw new CliError(`cannot create ${o.handle} on ${o.pds}: ${(err as Error).message}`)
  }
}

type Values = Record<string, string | boolean | string[] | undefined>

/** Flags over environment over config file. */
export function daemonConfig(v: Values, env = process.env): MeshletConfig {
  let file: Partial<MeshletConfig> = {}
  const configPath = (v.config as string) ?? env.MESHLET_CONFIG
  if (configPath) {
    try {
      file = JSON.parse(fs.readFileSync(configPath, 'utf8'))
    } catch (err) {
      throw new ConfigError(`cannot read config ${configPath}: ${(err as Error).message.split('\n')[0]}`)
    }
    // it holds the meshlet's app password: its user's only, whoever wrote it
    chmodIfExists(configPath, 0o600)
  }
  // an empty variable is unset: compose passes `${X:-}` through as ''
  const str = (flag: string, envName: string) => (v[flag] as string | undefined) ?? (env[envName] || undefined)
  const int = (flag: string, envName: string) => {
    const s = str(flag, envName)
    if (s === undefined) return undefined
    const n = Number(s)
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--${flag} must be a whole number, not ${s}`)
    return n
  }
  const firehose = str('firehose', 'MESHLET_FIREHOSE')
  const reserveCpu = int('reserve-cpu', 'MESHLET_RESERVE_CPU')
  const reserveMem = int('reserve-memory', 'MESHLET_RESERVE_MEMORY')
  const labels = ((v.label as string[] | undefined) ?? []).map((l) => {
    const i = l.indexOf('=')
    if (i < 1) throw new ConfigError(`--label must be KEY=VALUE, not ${l}`)
    return { key: l.slice(0, i), value: l.slice(i + 1) }
  })
  return checkConfig({
    ...file,
    ...defined({
      service: str('pds', 'MESHLET_PDS'),
      identifier: str('handle', 'MESHLET_HANDLE'),
      password: str('password', 'MESHLET_PASSWORD'),
      plcUrl: str('plc', 'MESHLET_PLC_URL'),
      dataDir: str('data-dir', 'MESHLET_DATA_DIR'),
      driver: str('driver', 'MESHLET_DRIVER') as MeshletConfig['driver'] | undefined,
      port: int('port', 'MESHLET_PORT'),
      host: str('host', 'MESHLET_HOST'),
      publicUrl: str('public-url', 'MESHLET_PUBLIC_URL'),
      firehose: firehose ? firehose.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      reserve: reserveCpu !== undefined || reserveMem !== undefined ? { cpuMillis: reserveCpu ?? 0, memoryMiB: reserveMem ?? 0 } : undefined,
      labels: labels.length ? labels : undefined,
      diskFloorMiB: int('disk-floor', 'MESHLET_DISK_FLOOR_MIB'),
      writePointsPerHour: int('write-budget', 'MESHLET_WRITE_BUDGET'),
      allowInsecureHttp: v['insecure-http'] ? true : env.MESHLET_INSECURE_HTTP === '1' ? true : undefined,
    }),
    plcUrl: str('plc', 'MESHLET_PLC_URL') ?? file.plcUrl ?? 'https://plc.directory',
  })
}

export function clusterFlags(v: Values, env = process.env): Map<string, string[]> {
  const specs = [...((v.cluster as string[] | undefined) ?? []), ...(env.MESHLET_CLUSTER ? env.MESHLET_CLUSTER.split(';') : [])]
  const out = new Map<string, string[]>()
  for (const s of specs) {
    const [name, members] = s.split('=')
    if (!name || members === undefined) throw new ConfigError(`--cluster must be NAME=DID,DID, not ${s}`)
    const dids = members.split(',').map((d) => d.trim()).filter(Boolean)
    const bad = dids.find((d) => !/^did:[a-z]+:[A-Za-z0-9._:%-]+$/.test(d))
    if (bad) throw new ConfigError(`--cluster ${name}: not a DID: ${bad}`)
    out.set(name, dids)
  }
  return out
}

export async function runDaemon(v: Values): Promise<void> {
  const cfg = daemonConfig(v)
  const clusters = clusterFlags(v)
  const { Meshlet } = await import('../daemon/meshlet.js')
  let meshlet
  try {
    meshlet = await Meshlet.start(cfg)
  } catch (err) {
    const e = err as { status?: number; message: string }
    if (e.status === 401) throw new CliError(`wrong handle or password for ${cfg.identifier} on ${cfg.service}`)
    throw err
  }
  for (const [name, members] of clusters) {
    await meshlet.ctx.writer.put(COLLECTIONS.cluster, name, { $type: COLLECTIONS.cluster, members, createdAt: nowIso() })
  }
  // no owner yet: the code to pair it with, so no config needs editing
  const pairing = meshlet.hasVerifiedOwner() || !meshlet.url ? undefined : meshlet.issuePairingCode('run')
  const info = { did: meshlet.did, xrpc: meshlet.url, dataDir: cfg.dataDir, ...(pairing ? { pairing } : {}) }
  console.log(v.json ? JSON.stringify(info) : `meshlet ${meshlet.did} running${meshlet.url ? `; XRPC at ${meshlet.url}` : ''}; state in ${cfg.dataDir}`)
  if (!v.json && pairing) console.log(pairingHint(meshlet.did, pairing))
  if (!v.json && !pairing && !meshlet.hasVerifiedOwner()) console.log('no owner yet: serve XRPC (--port) to pair it with meshlet pair')
  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await meshlet.close({ stopReplicas: true })
  process.exit(0)
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, val]) => val !== undefined)) as Partial<T>
}

/** What to tell the person at the meshlet's host about a code. */
export function pairingHint(meshletDid: string | undefined, p: IssuedCode): string {
  const until = new Date(p.expiresAt).toLocaleTimeString()
  return `pairing code ${p.code} (valid until ${until}, once; void after 5 wrong tries)\non the owner's machine: meshlet pair --meshlet ${meshletDid ?? '<meshlet DID or URL>'} ${p.code}`
}
