// A real PLC directory and PDS, in-process (@atproto/dev-env). Used by the tests and by
// `meshlet dev`; nothing here is a mock of the protocol.
import { TestNetworkNoAppView, TestPds } from '@atproto/dev-env'
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

export class DevNetwork {
  private extraPds: TestPds[] = []
  private counter = 0

  private constructor(
    readonly network: TestNetworkNoAppView,
    readonly idResolver: IdResolver,
  ) {}

  static async start(opts: { pdsPort?: number; plcPort?: number } = {}): Promise<DevNetwork> {
    const network = await TestNetworkNoAppView.create({
      plc: opts.plcPort ? { port: opts.plcPort } : {},
      pds: opts.pdsPort ? { port: opts.pdsPort } : {},
    })
    return new DevNetwork(network, createIdResolver({ plcUrl: network.plc.url, allowInsecureHttp: true }))
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
