// The dashboard in a real browser (playwright-core driving Debian's chromium), over an
// appview that follows three real meshlet daemons running containers on real Docker:
// a workload submitted with the CLI shows up running and then succeeded, a stopped
// meshlet's cell turns yellow and then red as its heartbeat ages, the downloaded
// settlement CSV matches the status records in the repos, and /metrics (strictly parsed)
// moves as the work runs. The page is laid out on a phone-sized screen throughout.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CSV_HEADER } from '../src/appview/ledger.js'
import { parseExposition, sampleValue, type MetricFamily } from '../src/util/metrics.js'
import { startAppview, type Appview } from '../src/appview/service.js'
import type { Meshlet } from '../src/daemon/meshlet.js'
import type { DevNetwork } from '../src/dev/network.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { statusRecordKey } from '../src/scheduler/hash.js'
import { silentLogger } from '../src/util/logger.js'
import { waitFor } from '../src/util/time.js'
import { cli, ownerEnvOf } from './helpers/cli.js'
import { addMember, formCluster, startNetwork, type Member } from './helpers/commune.js'
import { startMeshlet } from './helpers/daemons.js'
import { requireDocker } from './helpers/docker.js'

const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const CHROMIUM = process.env.MESHLET_CHROMIUM ?? '/usr/bin/chromium'
/** The lexicon's minimum: a stopped meshlet turns yellow after 10 s (+ skew) and red after 30 s (+ skew). */
const HEARTBEAT_SECONDS = 10

let net: DevNetwork
let members: Member[]
const daemons: Meshlet[] = []
let appview: Appview
let browser: Browser
let page: Page
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-dashboard-'))

beforeAll(async () => {
  await requireDocker()
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`)
  net = await startNetwork()
  members = await Promise.all(['alice', 'bob', 'carol'].map((n) => addMember(net, n)))
  await formCluster('dash', members)
  for (const m of members) {
    daemons.push(
      await startMeshlet(net, m, {
        driver: 'docker',
        heartbeatSeconds: HEARTBEAT_SECONDS,
        // alice's meshlet is too small for her job: a neighbour serves it, so the ledger has something to settle
        resources: m.name === 'alice' ? { cpuMillis: 250, memoryMiB: 512, storageMiB: 1024, gpus: 0 } : { cpuMillis: 2000, memoryMiB: 2048, storageMiB: 1024, gpus: 0 },
      }),
    )
  }
  appview = await startAppview({ dataDir: path.join(tmp, 'appview'), port: 0, plcUrl: net.plcUrl, allowInsecureHttp: true, seeds: [members[0].owner.did], logger: silentLogger() })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  page = await browser.newPage({ viewport: { width: 390, height: 844 }, acceptDownloads: true })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await appview?.close()
  await Promise.allSettled(daemons.map((d) => d.close({ stopReplicas: true })))
  await net?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function scrape(): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${appview.url}/metrics`)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/)
  return parseExposition(await res.text())
}

const sum = (families: Map<string, MetricFamily>, name: string) => (families.get(name)?.samples ?? []).reduce((n, s) => n + s.value, 0)

describe('the dashboard in a real browser', () => {
  it('shows the commune live: a workload runs and succeeds, a stopped meshlet goes yellow then red, the CSV settles the status records', async () => {
    const [alice] = members
    await page.goto(`${appview.url}/`)
    for (const m of members) await page.waitForSelector(`[data-meshlet="${m.meshlet.did}"][data-health="green"]`, { timeout: 30_000 })
    await page.waitForSelector('#live[data-live="live"]', { timeout: 30_000 })
    // readable on a phone: nothing wider than the screen (wide tables scroll in their own box)
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true)
    const before = await scrape()

    const spec = path.join(tmp, 'job.json')
    fs.writeFileSync(
      spec,
      JSON.stringify({ name: 'dashboard-job', image: IMAGE, command: ['sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 6; echo done'], resources: { cpu: 0.5, memory: '64Mi' } }),
    )
    const submitted = await cli(['submit', spec, '--json'], ownerEnvOf(alice.owner, net.plcUrl))
    expect(submitted.code, submitted.stderr).toBe(0)
    const { uri } = JSON.parse(submitted.stdout) as { uri: string }

    const row = `#workloads li[data-workload="${uri}"]`
    await page.waitForSelector(`${row}[data-state="running"]`, { timeout: 120_000 })
    await page.waitForSelector(`${row}[data-state="succeeded"]`, { timeout: 120_000 })
    await page.click(row)
    await page.waitForSelector(`#detail[data-workload="${uri}"][data-state="succeeded"]`, { timeout: 30_000 })
    const kinds = await page.$$eval('#timeline li', (lis) => lis.map((li) => li.getAttribute('data-kind')))
    for (const k of ['submitted', 'offered', 'placed', 'running', 'succeeded']) expect(kinds).toContain(k)
    expect(kinds[0]).toBe('submitted')
    expect(kinds.indexOf('succeeded')).toBeGreaterThan(kinds.indexOf('running'))
    // alice's own meshlet says why it took no replica
    expect(await page.textContent(`#whynot li[data-meshlet="${alice.meshlet.did}"]`)).toContain('infeasible:cpu')

    // the status record, read from the runner's repo (not from the appview)
    const runner = members.find((m) => m !== alice && appview.ctx.state.statuses.has(`at://${m.meshlet.did}/${COLLECTIONS.workloadStatus}/${statusRecordKey(uri, 0)}`))!
    const reader = new RepoReader(net.idResolver)
    const status = await reader.get(runner.meshlet.did, COLLECTIONS.workloadStatus, statusRecordKey(uri, 0))
    const workload = await reader.get(alice.owner.did, COLLECTIONS.workload, uri.split('/').pop()!)
    if (!status.ok || !workload.ok) throw new Error('status or workload record unreadable')
    const s = status.value.record
    expect(s).toMatchObject({ state: 'succeeded', exitCode: 0 })
    expect(s.cpuMillis).toBeGreaterThan(0)

    // the settlement CSV, downloaded from the page
    await page.waitForFunction((owner) => !!document.querySelector(`#ledger tr[data-owner="${owner}"]`), alice.owner.did, { timeout: 30_000 })
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')])
    const csv = fs.readFileSync((await download.path())!, 'utf8')
    const [header, ...lines] = csv.trimEnd().split('\r\n')
    expect(header).toBe(CSV_HEADER.join(','))
    const rows = new Map(lines.map((l) => l.split(',')).map((c) => [c[2], c]))
    // the rule the ledger documents: cpu as recorded, at most what was asked for over the wall time; memory as asked × wall time
    const w = workload.value.record
    const wallMs = Date.parse(s.finishedAt!) - Math.max(Date.parse(w.createdAt), Date.parse(s.startedAt!))
    const cpuSeconds = Math.min(s.cpuMillis!, Math.floor((w.resources.cpuMillis * wallMs) / 1000)) / 1000
    const gbHours = Math.floor((w.resources.memoryMiB * wallMs) / 1000) / 1024 / 3600
    const served = rows.get(runner.owner.did)!
    const used = rows.get(alice.owner.did)!
    expect(Number(served[3])).toBeCloseTo(cpuSeconds, 3)
    expect(Number(used[4])).toBeCloseTo(cpuSeconds, 3)
    expect(Number(used[5])).toBeCloseTo(-cpuSeconds, 3)
    expect(Number(served[6])).toBeCloseTo(gbHours, 6)
    expect(Number(used[7])).toBeCloseTo(gbHours, 6)
    expect([served[9], used[10]]).toEqual(['1', '1'])
    expect(rows.size).toBe(2)

    // metrics moved with the work
    const after = await scrape()
    expect(sum(after, 'meshlet_appview_records_indexed_total')).toBeGreaterThan(sum(before, 'meshlet_appview_records_indexed_total'))
    expect(sampleValue(after, 'meshlet_appview_records_indexed_total', { collection: COLLECTIONS.bid, via: 'firehose' })).toBeGreaterThan(0)
    expect(sampleValue(after, 'meshlet_appview_workloads_by_state', { state: 'succeeded' })).toBe(1)
    expect(sampleValue(after, 'meshlet_appview_workloads_by_phase', { phase: 'placed' })).toBe(1)
    expect(sampleValue(after, 'meshlet_appview_index_delay_seconds_count')).toBeGreaterThan(sampleValue(before, 'meshlet_appview_index_delay_seconds_count') ?? 0)
    for (const m of members) expect(sampleValue(after, 'meshlet_appview_heartbeat_age_seconds', { meshlet: m.meshlet.did })).toBeGreaterThanOrEqual(0)
    expect(after.get('meshlet_appview_firehose_lag_events')?.samples.length).toBeGreaterThan(0)

    // a meshlet that stops heartbeating ages into yellow, then red (lost)
    const quiet = members.find((m) => m !== alice && m !== runner)!
    await daemons[members.indexOf(quiet)].close({ stopReplicas: true })
    const cell = `[data-meshlet="${quiet.meshlet.did}"]`
    await page.waitForSelector(`${cell}[data-health="yellow"]`, { timeout: 90_000 })
    await page.waitForSelector(`${cell}[data-health="red"]`, { timeout: 120_000 })
    const age = sampleValue(await scrape(), 'meshlet_appview_heartbeat_age_seconds', { meshlet: quiet.meshlet.did })!
    expect(age).toBeGreaterThan(3 * HEARTBEAT_SECONDS)
  }, 420_000)
})
