// meshlet network: only the PLC directory and the PDS of a self-contained commune, with
// persistent data — the network service of docker-compose.yml. Meshlets (`meshlet run`)
// and owners (the CLI) use it like any PDS; `meshlet dev` is the same network plus three
// meshlets and a demo in one process.
import os from 'node:os'
import path from 'node:path'
import { isValidHandle } from '@atproto/syntax'
import type { Command, Values } from './command.js'
import { CliError } from './errors.js'

/** The dev PDS serves handles under this domain only. */
const HANDLE_DOMAIN = '.test'
const DEFAULT_PORTS = { plcPort: 2582, pdsPort: 2583 }

export interface NetworkOptions {
  dataDir: string
  /** Asked for (flag or environment); a new network without them takes DEFAULT_PORTS, a saved one its own. */
  plcPort?: number
  pdsPort?: number
  /** Accounts to create when missing (full handles), all with `password`. */
  accounts: string[]
  password?: string
}

export const networkCommands: Record<string, Command> = {
  network: {
    summary: 'run only a PLC directory and a PDS, with persistent data (a self-contained commune\'s network)',
    usage: `meshlet network [--data-dir DIR] [--plc-port N] [--pds-port N] [--account HANDLE]... [--password P] [--json]
  Serves until SIGINT or SIGTERM; everything is kept in DIR, and a restart with the same
  DIR brings back the same accounts, repos and DIDs (the ports are fixed by the first start:
  the PDS's URL is in its accounts' DID documents). Prints the environment the CLI needs.
  --data-dir DIR      state of the PLC and PDS    MESHLET_NETWORK_DIR (default ~/.meshlet/network)
  --plc-port N        PLC directory port          MESHLET_PLC_PORT (a new network: 2582)
  --pds-port N        PDS port                    MESHLET_PDS_PORT (a new network: 2583)
  --account HANDLE    an account to create if missing, e.g. alice.test (repeatable)
                                                  MESHLET_NETWORK_ACCOUNTS (comma-separated)
  --password P        the accounts' password      MESHLET_NETWORK_PASSWORD
  --json              one JSON line when ready
  Local use only: plain http on localhost, and the PDS listens on every interface.`,
    options: {
      'data-dir': { type: 'string' },
      'plc-port': { type: 'string' },
      'pds-port': { type: 'string' },
      account: { type: 'string', multiple: true },
      password: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    async run(v) {
      await runNetwork(networkOptions(v), Boolean(v.json))
    },
  },
}

/** Flags over environment over defaults; a bad value fails here, before anything starts. */
export function networkOptions(v: Values, env = process.env): NetworkOptions {
  const port = (flag: string, envName: string) => {
    const raw = (v[flag] as string | undefined) ?? env[envName]
    if (raw === undefined || raw === '') return undefined
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError(`--${flag} must be a port number (1-65535), not ${raw}`)
    return n
  }
  const named = (v.account as string[] | undefined) ?? (env.MESHLET_NETWORK_ACCOUNTS ?? '').split(',')
  const accounts = named.map((a) => a.trim()).filter(Boolean).map(fullHandle)
  const password = (v.password as string | undefined) ?? env.MESHLET_NETWORK_PASSWORD
  if (accounts.length && !password) throw new CliError('--account needs --password (or MESHLET_NETWORK_PASSWORD)')
  const plcPort = port('plc-port', 'MESHLET_PLC_PORT')
  const pdsPort = port('pds-port', 'MESHLET_PDS_PORT')
  if (plcPort !== undefined && plcPort === pdsPort) throw new CliError(`the PLC and the PDS need different ports (both ${plcPort})`)
  return {
    dataDir: path.resolve((v['data-dir'] as string | undefined) ?? env.MESHLET_NETWORK_DIR ?? path.join(os.homedir(), '.meshlet', 'network')),
    plcPort,
    pdsPort,
    accounts: [...new Set(accounts)],
    password,
  }
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, val]) => val !== undefined)) as Partial<T>
}

/** `alice` → `alice.test`; anything not under the dev PDS's domain is refused. */
function fullHandle(name: string): string {
  const handle = (name.includes('.') ? name : `${name}${HANDLE_DOMAIN}`).toLowerCase()
  if (!isValidHandle(handle) || !handle.endsWith(HANDLE_DOMAIN)) {
    throw new CliError(`--account must be a name or a handle under ${HANDLE_DOMAIN} (this PDS serves no other domain), not ${JSON.stringify(name)}`)
  }
  return handle
}

/** Starts the network, makes the accounts, prints the environment, and serves until a signal. */
async function runNetwork(o: NetworkOptions, json: boolean): Promise<void> {
  const { makePrivateDir } = await import('../db/index.js')
  const { DevNetwork } = await import('../dev/network.js')
  makePrivateDir(o.dataDir)
  const ports = DevNetwork.savedPorts(o.dataDir) ? o : { ...DEFAULT_PORTS, ...defined({ plcPort: o.plcPort, pdsPort: o.pdsPort }) }
  const net = await DevNetwork.start({ dataDir: o.dataDir, plcPort: ports.plcPort, pdsPort: ports.pdsPort })
  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      if (!json) console.log('stopping the network')
      await net.close()
      process.exit(0)
    })())
  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())

  const accounts: Awaited<ReturnType<typeof net.ensureAccount>>[] = []
  for (const handle of o.accounts) accounts.push(await net.ensureAccount(handle, o.password!))
  const env: Record<string, string> = {
    MESHLET_OWNER_PDS: net.pdsUrl,
    MESHLET_PLC_URL: net.plcUrl,
    MESHLET_INSECURE_HTTP: '1',
    ...(accounts[0] ? { MESHLET_OWNER_HANDLE: accounts[0].handle, MESHLET_OWNER_PASSWORD: o.password! } : {}),
  }
  const envLine = Object.entries(env).map(([k, val]) => `${k}=${val}`).join(' ')
  const ready = { event: 'ready', plc: net.plcUrl, pds: net.pdsUrl, dataDir: o.dataDir, accounts, env }
  // one line: a supervisor or a test reads it as it comes
  if (json) console.log(JSON.stringify(ready))
  else
    console.log(
      [
        `network up: PLC ${net.plcUrl}, PDS ${net.pdsUrl}; data in ${o.dataDir}`,
        ...accounts.map((a) => `  ${a.handle.padEnd(24)} ${a.did}${a.created ? ' (created)' : ''}`),
        'The CLI on this machine, as an owner:',
        `  export ${envLine}`,
        'SIGINT or SIGTERM stops it; the data stays.',
      ].join('\n'),
    )
  // serves until stop() exits the process
  await new Promise<never>(() => undefined)
}
