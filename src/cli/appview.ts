// meshlet appview (run the commune's appview) and meshlet ledger (the contribution
// ledger and settlement CSV, from an appview or straight from the commune's repos).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { print, type Command, type Values } from './command.js'
import { CliError } from './errors.js'
import type { LedgerRow } from '../lexicon/types/commune/appview/defs.js'

const env = process.env

/** DIDs from a comma list (flag or environment); anything else is one clear line. */
export function didList(raw: string | undefined, what: string): string[] {
  const dids = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const bad = dids.find((d) => !/^did:[a-z]+:[A-Za-z0-9._:%-]+$/.test(d))
  if (bad) throw new CliError(`${what}: not a DID: ${bad} (handles are not resolved here; pass DIDs)`)
  return dids
}

function urlList(raw: string | undefined, what: string): string[] {
  const urls = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const u of urls) {
    try {
      const p = new URL(u).protocol
      if (!['http:', 'https:', 'ws:', 'wss:'].includes(p)) throw new Error()
    } catch {
      throw new CliError(`${what}: not an http(s) or ws(s) URL: ${u}`)
    }
  }
  return urls
}

function port(v: Values): number {
  const raw = (v.port as string | undefined) ?? env.MESHLET_APPVIEW_PORT ?? '2590'
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--port must be a port number, not ${raw}`)
  return n
}

const IDENTITY_HELP = `  --plc URL          PLC directory                   MESHLET_PLC_URL (default https://plc.directory)
  --insecure-http    allow http:// identity lookups (local dev networks only)  MESHLET_INSECURE_HTTP=1`

export const appviewCommands: Record<string, Command> = {
  appview: {
    summary: 'index a commune\'s records and serve its dashboard, query API and metrics',
    usage: `meshlet appview --data-dir DIR [--port N] [--host H] [--seed DID,...] [--firehose URL,...]
  Finds the commune from the seed DIDs (owners or meshlets; remembered in DIR, so a
  restart needs none), backfills every repo with a verified getRepo, then follows the
  firehose from a persisted cursor. Serves at http://HOST:PORT/:
    /          the dashboard          /xrpc/commune.appview.*   the query API (docs/appview.md)
    /metrics   Prometheus metrics     /ledger.csv?from=&to=&period=   the settlement CSV
  --data-dir DIR     the SQLite store                MESHLET_APPVIEW_DATA_DIR (default ~/.meshlet/appview)
  --port N           default 2590; 0 picks one       MESHLET_APPVIEW_PORT
  --host H           interface (default 127.0.0.1)   MESHLET_APPVIEW_HOST
  --seed DID,...     where the commune is found from MESHLET_APPVIEW_SEEDS
  --firehose URL,... relay or PDS URLs (default: the PDS of every repo)  MESHLET_FIREHOSE
${IDENTITY_HELP}
  --json             print the startup line as JSON`,
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      firehose: { type: 'string' },
      plc: { type: 'string' },
      'insecure-http': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    async run(v) {
      const dataDir = (v['data-dir'] as string | undefined) ?? env.MESHLET_APPVIEW_DATA_DIR ?? path.join(os.homedir(), '.meshlet', 'appview')
      const seeds = didList((v.seed as string | undefined) ?? env.MESHLET_APPVIEW_SEEDS, '--seed')
      const firehose = urlList((v.firehose as string | undefined) ?? env.MESHLET_FIREHOSE, '--firehose')
      const p = port(v)
      if (seeds.length === 0 && !fs.existsSync(path.join(dataDir, 'appview.sqlite'))) {
        throw new CliError('no commune to index: pass --seed DID (an owner or meshlet of the commune)')
      }
      const { startAppview } = await import('../appview/service.js')
      const appview = await startAppview({
        dataDir,
        port: p,
        host: (v.host as string | undefined) ?? env.MESHLET_APPVIEW_HOST,
        seeds,
        firehose,
        plcUrl: (v.plc as string | undefined) ?? env.MESHLET_PLC_URL ?? 'https://plc.directory',
        allowInsecureHttp: Boolean(v['insecure-http']) || env.MESHLET_INSECURE_HTTP === '1',
      }).catch((err: Error) => {
        throw new CliError(err.message.split('\n')[0])
      })
      const repos = appview.indexer.repoList()
      const info = { url: appview.url, dashboard: `${appview.url}/`, metrics: `${appview.url}/metrics`, dataDir, repos: repos.length, failed: repos.filter((r) => r.status === 'failed').length }
      console.log(
        v.json
          ? JSON.stringify(info)
          : `appview at ${appview.url}/ indexing ${info.repos} repos${info.failed ? ` (${info.failed} unreachable, retried)` : ''}; metrics at ${info.metrics}; state in ${dataDir}`,
      )
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
      await appview.close()
    },
  },
  ledger: {
    summary: 'the contribution ledger: cpu and memory served and used per owner (settlement CSV with --csv)',
    usage: `meshlet ledger [--from DATE] [--to DATE] [--period total|day|week|month] [--owner DID] [--csv]
                     (--appview URL | --seed DID,...)
  One row per owner per period: cpu-seconds and memory-GB-hours its meshlets served to
  others' workloads, those its workloads used on others' meshlets, and the balance. Only
  public records count, so anyone gets the same rows: from an appview (--appview), or read
  here from the commune's repos, found from --seed DIDs (verified getRepo, no appview).
  --from, --to       ISO dates or datetimes (default: the last 30 days; --to is exclusive)
  --period P         total (default), day, week (from Monday) or month; UTC
  --owner DID        only this owner's rows
  --csv              the settlement CSV instead of a table
  --appview URL      an appview to ask                MESHLET_APPVIEW
  --seed DID,...     or: where to find the commune    MESHLET_APPVIEW_SEEDS
${IDENTITY_HELP}
  --json             the rows as JSON`,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      period: { type: 'string' },
      owner: { type: 'string' },
      csv: { type: 'boolean' },
      appview: { type: 'string' },
      seed: { type: 'string' },
      plc: { type: 'string' },
      'insecure-http': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    async run(v) {
      const { parseRange, PERIODS, ledgerCsv } = await import('../appview/ledger.js')
      let range
      try {
        range = parseRange(v.from as string | undefined, v.to as string | undefined, Date.now())
      } catch (err) {
        throw new CliError((err as Error).message)
      }
      const period = ((v.period as string | undefined) ?? 'total') as (typeof PERIODS)[number]
      if (!PERIODS.includes(period)) throw new CliError(`--period must be one of ${PERIODS.join(', ')}, not ${period}`)
      const owner = v.owner === undefined ? undefined : didList(v.owner as string, '--owner')[0]
      const appviewUrl = (v.appview as string | undefined) ?? env.MESHLET_APPVIEW
      const seeds = didList((v.seed as string | undefined) ?? env.MESHLET_APPVIEW_SEEDS, '--seed')
      const q = { from: range.from, to: range.to, period, ...(owner ? { owner } : {}) }
      let rows: LedgerRow[]
      if (appviewUrl) rows = await fromAppview(urlList(appviewUrl, '--appview')[0], q)
      else if (seeds.length) {
        const { readLedger } = await import('../appview/oneshot.js')
        rows = await readLedger({
          seeds,
          plcUrl: (v.plc as string | undefined) ?? env.MESHLET_PLC_URL ?? 'https://plc.directory',
          allowInsecureHttp: Boolean(v['insecure-http']) || env.MESHLET_INSECURE_HTTP === '1',
          query: q,
          warn: (line) => console.error(`meshlet ledger: ${line}`),
        })
      } else throw new CliError('pass --appview URL (or MESHLET_APPVIEW), or --seed DID to read the commune directly')
      if (v.csv) {
        process.stdout.write(ledgerCsv(rows))
        return
      }
      print(v, { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), period, rows }, () => ledgerTable(rows))
    },
  },
}

async function fromAppview(base: string, q: { from: number; to: number; period: string; owner?: string }): Promise<LedgerRow[]> {
  const url = new URL('/xrpc/commune.appview.getLedger', base)
  url.searchParams.set('from', new Date(q.from).toISOString())
  url.searchParams.set('to', new Date(q.to).toISOString())
  url.searchParams.set('period', q.period)
  if (q.owner) url.searchParams.set('owner', q.owner)
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) })
  } catch (err) {
    throw new CliError(`cannot reach the appview at ${base}: ${(err as Error).message}`)
  }
  const body = (await res.json().catch(() => undefined)) as { rows?: LedgerRow[]; message?: string; error?: string } | undefined
  if (!res.ok || !body?.rows) throw new CliError(`appview ${base}: ${body?.message ?? body?.error ?? `HTTP ${res.status}`}`)
  return body.rows
}

function ledgerTable(rows: LedgerRow[]): string {
  if (rows.length === 0) return 'no finished replicas served or used in that range'
  const head = ['period', 'owner', 'served cpu-s', 'used cpu-s', 'balance cpu-s', 'served GB-h', 'used GB-h', 'replicas served/used']
  const body = rows.map((r) => [
    `${r.periodStart.slice(0, 10)}..${r.periodEnd.slice(0, 10)}`,
    r.owner,
    (r.servedCpuMillis / 1000).toFixed(3),
    (r.usedCpuMillis / 1000).toFixed(3),
    (r.balanceCpuMillis / 1000).toFixed(3),
    (r.servedMemoryMiBSeconds / 1024 / 3600).toFixed(6),
    (r.usedMemoryMiBSeconds / 1024 / 3600).toFixed(6),
    `${r.servedReplicas}/${r.usedReplicas}`,
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
}
