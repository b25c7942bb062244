// What every command shares: its shape, the owner's login options, and printing
// (--json or text). Command groups live in their own modules and are listed in commands.ts.
import type { ParseArgsConfig } from 'node:util'
import { CliError } from './errors.js'
import type { OwnerLogin, OwnerSession } from './owner.js'

// The atproto stack loads only for commands that need it: --help stays quick.
export const session = async (login: OwnerLogin): Promise<OwnerSession> => (await import('./owner.js')).OwnerSession.login(login)

export type Options = NonNullable<ParseArgsConfig['options']>
export type Values = Record<string, string | boolean | string[] | undefined>

export const OWNER_OPTS: Options = {
  pds: { type: 'string' },
  handle: { type: 'string' },
  password: { type: 'string' },
  plc: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}
export const OWNER_HELP = `Owner options (or environment):
  --pds URL          your PDS                       MESHLET_OWNER_PDS
  --handle H         your handle or DID             MESHLET_OWNER_HANDLE
  --password P       an app password                MESHLET_OWNER_PASSWORD
  --plc URL          PLC directory                  MESHLET_PLC_URL (default https://plc.directory)
  --insecure-http    allow http:// identity lookups (local dev networks only)  MESHLET_INSECURE_HTTP=1
  --json             machine-readable output`

export interface Command {
  summary: string
  usage: string
  options: Options
  run(values: Values, positionals: string[]): Promise<unknown>
}

const env = process.env

export function ownerLogin(v: Values): OwnerLogin {
  const pds = (v.pds as string) ?? env.MESHLET_OWNER_PDS
  const identifier = (v.handle as string) ?? env.MESHLET_OWNER_HANDLE
  const password = (v.password as string) ?? env.MESHLET_OWNER_PASSWORD
  const missing = [!pds && '--pds', !identifier && '--handle', !password && '--password'].filter(Boolean)
  if (missing.length) throw new CliError(`missing ${missing.join(', ')} (or MESHLET_OWNER_PDS/HANDLE/PASSWORD)`)
  return {
    pds: pds!,
    identifier: identifier!,
    password: password!,
    plcUrl: (v.plc as string) ?? env.MESHLET_PLC_URL ?? 'https://plc.directory',
    allowInsecureHttp: Boolean(v['insecure-http']) || env.MESHLET_INSECURE_HTTP === '1',
  }
}

export function print(v: Values, data: unknown, text: () => string): void {
  console.log(v.json ? JSON.stringify(data, null, 2) : text())
}


export function need(v: Values, key: string): string {
  const val = v[key]
  if (typeof val !== 'string' || !val) throw new CliError(`missing --${key}`)
  return val
}
