// A real PLC directory and PDS, in-process (@atproto/dev-env). Used by the tests and by
// `meshlet dev`; nothing here is a mock of the protocol.
import fs from 'node:fs'
import path from 'node:path'
import { TestNetworkNoAppView, TestPds, TestPlc } from '@atproto/dev-env'
import { Secp256k1Keypair } from '@atproto/crypto'
import * as ui8 from 'uint8arrays'
import type { IdResolver } from '@atproto/identity'
import { createIdResolver } from '../identity/resolver.js'
import { RepoWriter } from '../repo/writer.js'
import { wakeSequencerOnWrite } from './sequencer.js'

export interface DevAccount {
  did: string
  handle: string
  password: string
  pdsUrl: string
  writer: RepoWriter
}

interface SavedNetwork {
  plcPort: number
  pdsPort: number
  rotationKeyHex: string
  plcOps: Record<string, unknown[]>
}

async function postPlcOp(plcUrl: string, did: string, op: unknown): Promise<void> {
  const res = await fetch(`${plcUrl}/${encodeURIComponent(did)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(op),
  })
  if (!res.ok) throw new Error(`replaying PLC operation for ${did} failed: ${res.status} ${await res.text()}`)
}

/** `{ port }` only when there is one: dev-env spreads its config over its defaults, so an undefined port would erase the free one it picks. */
function portOf(port: number | undefined): { port?: number } {
  return port ? { port } : {}
}

/** A saved network keeps its ports; asking for others is a mistake to report, not to follow. */
function samePorts(dir: string, saved: SavedNetwork, want: { plcPort?: number; pdsPort?: number }): void {
  const clash = [
    want.plcPort && want.plcPort !== saved.plcPort ? `PLC port ${saved.plcPort} (not ${want.plcPort})` : '',
    want.pdsPort && want.pdsPort !== saved.pdsPort ? `PDS port ${saved.pdsPort} (not ${want.pdsPort})` : '',
  ].filter(Boolean)
  if (clash.length) throw new Error(`the network in ${dir} was made with ${clash.join(' and ')}; its accounts' DID documents name those ports (use them, or a new data dir)`)
}

/** A new account on a dev PDS (over XRPC, so the PDS may run in another process); `n` keeps handles apart. */
export async function createDevAccount(pdsUrl: string, name: string, n: number): Promise<DevAccount> {
  const handle = `${name}-${n}${Date.now().toString(36).slice(-4)}.test`
  const password = `pw-${name}-${n}`
  const agent = new (await import('@atproto/api')).AtpAgent({ service: pdsUrl })
  const res = await agent.createAccount({ handle, password, email: `${handle}@example.com` })
  return { did: res.data.did, handle, password, pdsUrl, writer: new RepoWriter(agent, res.data.did) }
}

export class DevNetwork {
  private extraPds: TestPds[] = []
  private counter = 0

  private constructor(
    readonly network: TestNetworkNoAppView,
    readonly idResolver: IdResolver,
    private readonly dataDir?: string,
  ) {}

  /**
   * Starts a PLC and a PDS. With a dataDir, the network survives restarts: the PDS keeps
   * its data there and the same ports, and the PLC (in-memory in dev-env) is refilled by
   * replaying the saved, self-certifying PLC operations — every one it accepts is saved as
   * it is accepted, so accounts created by anyone (a meshlet's `init --create`) survive too.
   * Ports are chosen once: the PDS's URL, port included, is in its accounts' DID documents.
   */
  static async start(opts: { dataDir?: string; plcPort?: number; pdsPort?: number } = {}): Promise<DevNetwork> {
    if (!opts.dataDir) {
      const network = await TestNetworkNoAppView.create({ plc: portOf(opts.plcPort), pds: portOf(opts.pdsPort) })
      wakeSequencerOnWrite(network.pds)
      return new DevNetwork(network, createIdResolver({ plcUrl: network.plc.url, allowInsecureHttp: true }))
    }
    const dir = opts.dataDir
    fs.mkdirSync(path.join(dir, 'pds'), { recursive: true })
    const savedFile = path.join(dir, 'network.json')
    const saved: SavedNetwork | undefined = fs.existsSync(savedFile) ? JSON.parse(fs.readFileSync(savedFile, 'utf8')) : undefined
    if (saved) samePorts(dir, saved, opts)
    const plc = await TestPlc.create(portOf(saved?.plcPort ?? opts.plcPort))
    for (const [did, ops] of Object.entries(saved?.plcOps ?? {})) {
      for (const op of ops) await postPlcOp(plc.url, did, op)
    }
    const rotationHex =
      saved?.rotationKeyHex ?? ui8.toString(await (await Secp256k1Keypair.create({ exportable: true })).export(), 'hex')
    const pds = await TestPds.create({
      didPlcUrl: plc.url,
      ...portOf(saved?.pdsPort ?? opts.pdsPort),
      dataDirectory: path.join(dir, 'pds'),
      blobstoreDiskLocation: path.join(dir, 'pds', 'blobs'),
      plcRotationKeyK256PrivateKeyHex: rotationHex,
    })
    wakeSequencerOnWrite(pds)
    const network = new TestNetworkNoAppView(plc, pds)
    const net = new DevNetwork(network, createIdResolver({ plcUrl: plc.url, allowInsecureHttp: true }), dir)
    if (!saved) net.save({ plcPort: plc.port, pdsPort: pds.port, rotationKeyHex: rotationHex, plcOps: {} })
    net.saveEveryPlcOp(plc)
    return net
  }

  /** The ports a network saved in dataDir was made with, or undefined for a new one. */
  static savedPorts(dataDir: string): { plcPort: number; pdsPort: number } | undefined {
    const file = path.join(dataDir, 'network.json')
    if (!fs.existsSync(file)) return undefined
    const saved: SavedNetwork = JSON.parse(fs.readFileSync(file, 'utf8'))
    return { plcPort: saved.plcPort, pdsPort: saved.pdsPort }
  }

  /** From now on, every operation the PLC accepts is appended to the saved ones (after the replay, which must not save twice). */
  private saveEveryPlcOp(plc: TestPlc): void {
    const db = plc.ctx.db
    const accept = db.validateAndAddOp.bind(db)
    db.validateAndAddOp = async (did, op) => {
      await accept(did, op)
      const saved = this.load()
      ;(saved.plcOps[did] ??= []).push(op)
      this.save(saved)
    }
  }

  /** Saves the PLC operations of these DIDs so a restart can replay them. */
  async persist(dids: string[]): Promise<void> {
    if (!this.dataDir) return
    const logs = new Map<string, unknown[]>()
    for (const did of dids) {
      const res = await fetch(`${this.plcUrl}/${encodeURIComponent(did)}/log/audit`)
      if (res.ok) logs.set(did, ((await res.json()) as { operation: unknown }[]).map((e) => e.operation))
    }
    // read and written with no await between: an operation saved meanwhile is kept
    const saved = this.load()
    for (const [did, ops] of logs) saved.plcOps[did] = ops
    this.save(saved)
  }

  private load(): SavedNetwork {
    return JSON.parse(fs.readFileSync(path.join(this.dataDir!, 'network.json'), 'utf8'))
  }

  /** Written whole and renamed into place: a crash mid-write leaves the previous file, never half of one. */
  private save(s: SavedNetwork): void {
    const file = path.join(this.dataDir!, 'network.json')
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(s, null, 2), { mode: 0o600 })
    fs.renameSync(`${file}.tmp`, file)
  }

  get plcUrl(): string {
    return this.network.plc.url
  }

  get pdsUrl(): string {
    return this.network.pds.url
  }

  /** A second PDS on the same PLC, for owners hosted elsewhere. */
  async addPds(): Promise<string> {
    const pds = await TestPds.create({ didPlcUrl: this.network.plc.url })
    wakeSequencerOnWrite(pds)
    this.extraPds.push(pds)
    return pds.url
  }

  pdsUrls(): string[] {
    return [this.pdsUrl, ...this.extraPds.map((p) => p.url)]
  }

  async createAccount(name: string, pdsUrl = this.pdsUrl): Promise<DevAccount> {
    return createDevAccount(pdsUrl, name, ++this.counter)
  }

  /**
   * This exact handle with this password: logged in if it exists, created if not. A
   * handle that exists with another password is an error, never a second account.
   */
  async ensureAccount(handle: string, password: string): Promise<{ did: string; handle: string; created: boolean }> {
    const { AtpAgent } = await import('@atproto/api')
    const agent = new AtpAgent({ service: this.pdsUrl })
    try {
      const res = await agent.login({ identifier: handle, password })
      return { did: res.data.did, handle, created: false }
    } catch (err) {
      if ((err as { status?: number }).status !== 401) throw err
    }
    try {
      const res = await agent.createAccount({ handle, password, email: `${handle}@example.com` })
      return { did: res.data.did, handle, created: true }
    } catch (err) {
      const e = err as { error?: string; message: string }
      if (e.error === 'HandleNotAvailable') throw new Error(`${handle} exists with another password`)
      throw new Error(`cannot create ${handle}: ${e.message}`)
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.extraPds.map((p) => p.close()))
    await this.network.close()
  }
}
