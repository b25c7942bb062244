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
   * replaying the saved, self-certifying PLC operations.
   */
  static async start(opts: { dataDir?: string } = {}): Promise<DevNetwork> {
    if (!opts.dataDir) {
      const network = await TestNetworkNoAppView.create({})
      return new DevNetwork(network, createIdResolver({ plcUrl: network.plc.url, allowInsecureHttp: true }))
    }
    const dir = opts.dataDir
    fs.mkdirSync(path.join(dir, 'pds'), { recursive: true })
    const savedFile = path.join(dir, 'network.json')
    const saved: SavedNetwork | undefined = fs.existsSync(savedFile) ? JSON.parse(fs.readFileSync(savedFile, 'utf8')) : undefined
    const plc = await TestPlc.create(saved ? { port: saved.plcPort } : {})
    for (const [did, ops] of Object.entries(saved?.plcOps ?? {})) {
      for (const op of ops) await postPlcOp(plc.url, did, op)
    }
    const rotationHex =
      saved?.rotationKeyHex ?? ui8.toString(await (await Secp256k1Keypair.create({ exportable: true })).export(), 'hex')
    const pds = await TestPds.create({
      didPlcUrl: plc.url,
      ...(saved ? { port: saved.pdsPort } : {}),
      dataDirectory: path.join(dir, 'pds'),
      blobstoreDiskLocation: path.join(dir, 'pds', 'blobs'),
      plcRotationKeyK256PrivateKeyHex: rotationHex,
    })
    const network = new TestNetworkNoAppView(plc, pds)
    const net = new DevNetwork(network, createIdResolver({ plcUrl: plc.url, allowInsecureHttp: true }), dir)
    if (!saved) net.save({ plcPort: plc.port, pdsPort: pds.port, rotationKeyHex: rotationHex, plcOps: {} })
    return net
  }

  /** Saves the PLC operations of these DIDs so a restart can replay them. */
  async persist(dids: string[]): Promise<void> {
    if (!this.dataDir) return
    const file = path.join(this.dataDir, 'network.json')
    const saved: SavedNetwork = JSON.parse(fs.readFileSync(file, 'utf8'))
    for (const did of dids) {
      const res = await fetch(`${this.plcUrl}/${encodeURIComponent(did)}/log/audit`)
      if (res.ok) saved.plcOps[did] = ((await res.json()) as { operation: unknown }[]).map((e) => e.operation)
    }
    this.save(saved)
  }

  private save(s: SavedNetwork): void {
    fs.writeFileSync(path.join(this.dataDir!, 'network.json'), JSON.stringify(s, null, 2), { mode: 0o600 })
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
    this.extraPds.push(pds)
    return pds.url
  }

  pdsUrls(): string[] {
    return [this.pdsUrl, ...this.extraPds.map((p) => p.url)]
  }

  async createAccount(name: string, pdsUrl = this.pdsUrl): Promise<DevAccount> {
    const handle = `${name}-${++this.counter}${Date.now().toString(36).slice(-4)}.test`
    const password = `pw-${name}-${this.counter}`
    const agent = new (await import('@atproto/api')).AtpAgent({ service: pdsUrl })
    const res = await agent.createAccount({ handle, password, email: `${handle}@example.com` })
    return { did: res.data.did, handle, password, pdsUrl, writer: new RepoWriter(agent, res.data.did) }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.extraPds.map((p) => p.close()))
    await this.network.close()
  }
}
