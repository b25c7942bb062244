// A real PLC and PDS in a process of their own, as a PDS is a server of its own: on a
// two-core machine the PDS then works beside the daemons instead of taking turns with them
// on one thread. Everything a benchmark does with it goes over HTTP and the firehose.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { IdResolver } from '@atproto/identity'
import { createDevAccount, type DevAccount } from '../../src/dev/network.js'
import { createIdResolver } from '../../src/identity/resolver.js'

/** What a benchmark needs of a network, wherever its PDS runs (DevNetwork has the same). */
export interface BenchNetwork {
  pdsUrl: string
  plcUrl: string
  idResolver: IdResolver
  createAccount(name: string): Promise<DevAccount>
  close(): Promise<void>
}

/** USER_HZ: 100 on every Linux a benchmark here runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100

export class NetworkProcess implements BenchNetwork {
  private counter = 0
  readonly idResolver: IdResolver

  private constructor(
    private readonly child: ChildProcess,
    readonly pdsUrl: string,
    readonly plcUrl: string,
  ) {
    this.idResolver = createIdResolver({ plcUrl, allowInsecureHttp: true })
  }

  static async start(): Promise<NetworkProcess> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'network-child.ts')
    const child = spawn(process.execPath, ['--import', 'tsx', entry], { stdio: ['pipe', 'pipe', 'inherit'] })
    const first = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! })
      lines.once('line', (line) => {
        lines.close()
        resolve(line)
      })
      child.once('exit', (code) => reject(new Error(`the network process exited (${code}) before it started`)))
    })
    const { pdsUrl, plcUrl } = JSON.parse(first) as { pdsUrl: string; plcUrl: string }
    return new NetworkProcess(child, pdsUrl, plcUrl)
  }

  /** CPU time (user + system) the network process has used so far, in ms (Linux /proc). */
  cpuMs(): number {
    const stat = fs.readFileSync(`/proc/${this.child.pid}/stat`, 'utf8')
    // the fields after the command name, which is in parentheses and may hold spaces
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND
  }

  createAccount(name: string): Promise<DevAccount> {
    return createDevAccount(this.pdsUrl, name, ++this.counter)
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.stdin!.end()
    await exited
  }
}
