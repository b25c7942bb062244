// meshlet dev: a whole commune on one machine — a real PLC and PDS in-process, three
// owners with linked meshlets in one cluster, a demo workload placed and run.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DevAccount } from '../dev/network.js'
import { DevNetwork } from '../dev/network.js'
import { linkMeshlet } from '../identity/link.js'
import { Meshlet } from '../daemon/meshlet.js'
import { COLLECTIONS, type WorkloadRecord } from '../records/index.js'
import { RepoWriter } from '../repo/writer.js'
import { place } from '../scheduler/placement.js'
import { silentLogger } from '../util/logger.js'
import { nowIso, waitFor } from '../util/time.js'
import { MeshletClient } from '../xrpc/client.js'
import type { Appview } from '../appview/service.js'

export const DEMO_IMAGE = process.env.MESHLET_DEMO_IMAGE ?? 'meshlet-test/busybox:latest'
const NAMES = ['alice', 'bob', 'carol'] as const

interface Person {
  name: string
  owner: DevAccount
  meshlet: DevAccount
}

export async function runDev(o: { dataDir?: string; driver?: 'docker' | 'process'; json: boolean }): Promise<void> {
  process.env.LOG_ENABLED ??= 'false'
  const say = (event: string, text: string, data: Record<string, unknown> = {}) =>
    console.log(o.json ? JSON.stringify({ event, ...data }) : text)
  const temp = !o.dataDir
  const dataDir = o.dataDir ? path.resolve(o.dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-dev-'))
  fs.mkdirSync(dataDir, { recursive: true })

  const driver = o.driver ?? (await chooseDriver((msg) => say('warning', `warning: ${msg}`, { message: msg })))
  const net = await DevNetwork.start({ dataDir })
  say('network', `network up: PLC ${net.plcUrl}, PDS ${net.pdsUrl}`, { plc: net.plcUrl, pds: net.pdsUrl })

  const people = await accounts(net, dataDir)
  for (const p of people) await linkMeshlet(p.owner.writer, p.meshlet.writer, `${p.name}'s machine`)
  await net.persist(people.flatMap((p) => [p.owner.did, p.meshlet.did]))
  for (const p of people) say('linked', `linked ${p.name} (${p.owner.did}) ↔ meshlet ${p.meshlet.did}`, { name: p.name, owner: p.owner.did, meshlet: p.meshlet.did })
  for (const p of people) {
    await p.meshlet.writer.put(COLLECTIONS.cluster, 'commune', {
      $type: COLLECTIONS.cluster,
      members: people.filter((x) => x !== p).map((x) => x.owner.did),
      createdAt: nowIso(),
    })
  }

  const meshlets: Meshlet[] = []
  let closing = false
  let appview: Appview | undefined
  const shutdown = async () => {
    if (closing) return
    closing = true
    say('stopping', 'stopping: containers first, then the network')
    await Promise.allSettled(meshlets.map((m) => m.close({ stopReplicas: true })))
    await appview?.close()
    await net.close()
    if (temp) fs.rmSync(dataDir, { recursive: true, force: true })
    say('stopped', 'stopped cleanly')
    process.exit(0)
  }
  process.once('SIGINT', () => void shutdown())
  process.once('SIGTERM', () => void shutdown())

  for (const p of people) {
    meshlets.push(
      await Meshlet.start(
        {
          service: net.pdsUrl,
          identifier: p.meshlet.handle,
          password: p.meshlet.password,
          plcUrl: net.plcUrl,
          allowInsecureHttp: true,
          dataDir: path.join(dataDir, p.name),
          driver,
          port: 0,
          // a demo on a laptop: keep 1 GiB free rather than the daemon's max(20 %, 50 GiB)
          diskFloorMiB: 1024,
          // alice's meshlet is a small one, so her demo job runs on a neighbour's
          ...(p.name === 'alice' ? { resources: { cpuMillis: 250, memoryMiB: 512, storageMiB: 1024, gpus: 0 } } : {}),
        },
        { logger: silentLogger() },
      ),
    )
  }
  const verified = meshlets[0].ctx.formation.members().filter((m) => m.verified).length
  say('cluster', `cluster 'commune' formed: ${verified + 1} members mutually verified`, { members: verified + 1 })
  const { startAppview } = await import('../appview/service.js')
  appview = await startAppview({ dataDir: path.join(dataDir, 'appview'), port: 0, plcUrl: net.plcUrl, allowInsecureHttp: true, seeds: people.map((p) => p.owner.did), logger: silentLogger() })
  say('appview', `appview: dashboard at ${appview.url}/`, { dashboard: `${appview.url}/`, metrics: `${appview.url}/metrics` })

  // The demo: alice asks for a job that her own meshlet cannot hold, so a neighbour runs it.
  const [alice] = people
  const demo: WorkloadRecord = {
    $type: COLLECTIONS.workload,
    name: 'hello-commune',
    image: DEMO_IMAGE,
    command: ['sh', '-c', 'echo "hello from $(hostname), a meshlet of the commune"; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done'],
    resources: { cpuMillis: 500, memoryMiB: 64 },
    replicas: 1,
    createdAt: nowIso(),
  }
  const { uri } = await alice.owner.writer.create(COLLECTIONS.workload, demo)
  say('submitted', `alice submitted ${uri}`, { uri })
  const selected = await waitFor(
    () => {
      const p = place(meshlets[0].ctx.state, uri, Date.now())
      return p?.phase === 'placed' ? p.selected[0] : undefined
    },
    { timeoutMs: 30_000, what: 'placement' },
  )
  const winner = people.find((p) => p.meshlet.did === selected.meshlet)!
  say('placed', `placed on ${winner.name}'s meshlet (${selected.meshlet})`, { meshlet: selected.meshlet })
  const winnerMeshlet = meshlets[people.indexOf(winner)]
  const final = await waitFor(
    () => {
      const s = winnerMeshlet.ctx.state.statusesFor(uri).find((x) => x.did === winner.meshlet.did)?.record
      if (s?.state === 'running') say('running', 'running', {})
      return s && ['succeeded', 'failed', 'stopped'].includes(s.state) ? s : undefined
    },
    { timeoutMs: 120_000, intervalMs: 200, what: 'the demo workload to finish' },
  )
  const client = new MeshletClient(alice.owner.writer.agent, winnerMeshlet.ctx.reader)
  const logs = await client.call(winner.meshlet.did, 'farm.meshlet.getWorkloadLogs', { uri }).catch(() => ({ logs: '' }))
  say(final.state, `${final.state} (exit ${final.exitCode}, ${((final.cpuMillis ?? 0) / 1000).toFixed(2)} cpu-s) with output:\n${indent(logs.logs)}`, {
    uri,
    exitCode: final.exitCode,
    cpuMillis: final.cpuMillis,
    output: logs.logs,
  })

  const specFile = path.join(dataDir, 'hello.json')
  fs.writeFileSync(specFile, JSON.stringify({ name: 'hello', image: DEMO_IMAGE, command: ['echo', 'hi'], resources: { cpu: 0.1, memory: '32Mi' } }, null, 2))
  const bin = path.relative(process.cwd(), fileURLToPath(new URL('./main.js', import.meta.url))) || 'meshlet'
  const envLine = `MESHLET_OWNER_PDS=${net.pdsUrl} MESHLET_OWNER_HANDLE=${alice.owner.handle} MESHLET_OWNER_PASSWORD=${alice.owner.password} MESHLET_PLC_URL=${net.plcUrl} MESHLET_INSECURE_HTTP=1`
  say(
    'ready',
    [
      '',
      'The commune is up. As alice, in another terminal:',
      `  export ${envLine}`,
      `  node ${bin} submit ${specFile} --wait`,
      `  node ${bin} status`,
      `  node ${bin} cluster`,
      'XRPC endpoints:',
      ...people.map((p, i) => `  ${p.name.padEnd(6)} ${meshlets[i].url}  (${p.meshlet.did})`),
      `Dashboard: ${appview.url}/  (API ${appview.url}/xrpc/commune.appview.*, metrics ${appview.url}/metrics)`,
      `  node ${bin} ledger --appview ${appview.url} --csv`,
      'Ctrl-C stops everything.',
    ].join('\n'),
    { env: envLine, specFile, dashboard: `${appview.url}/`, endpoints: Object.fromEntries(people.map((p, i) => [p.name, meshlets[i].url])) },
  )
}

async function chooseDriver(warn: (msg: string) => void): Promise<'docker' | 'process'> {
  const { dockerAvailable } = await import('../executor/index.js')
  if (!(await dockerAvailable())) {
    warn('no Docker engine answers on /var/run/docker.sock; running workloads as local processes (process driver)')
    return 'process'
  }
  if (await ensureDemoImage()) return 'docker'
  warn(`the demo image ${DEMO_IMAGE} is not present and cannot be built here (needs a static /bin/busybox); running workloads as local processes`)
  return 'process'
}

/** The demo image, built from a static busybox when missing: no registry is needed. */
async function ensureDemoImage(): Promise<boolean> {
  const Docker = (await import('dockerode')).default
  const docker = new Docker()
  const present = () => docker.getImage(DEMO_IMAGE).inspect().then(() => true, () => false)
  if (await present()) return true
  const script = fileURLToPath(new URL('../../scripts/make-test-image.sh', import.meta.url))
  if (!fs.existsSync(script) || !fs.existsSync('/bin/busybox')) return false
  const { spawnSync } = await import('node:child_process')
  spawnSync('bash', [script, DEMO_IMAGE], { stdio: 'ignore' })
  return present()
}

/** alice, bob, carol: reused from the data dir, or created (alice's meshlet is kept small). */
async function accounts(net: DevNetwork, dataDir: string): Promise<Person[]> {
  const file = path.join(dataDir, 'accounts.json')
  if (fs.existsSync(file)) {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string; owner: Omit<DevAccount, 'writer'>; meshlet: Omit<DevAccount, 'writer'> }[]
    return Promise.all(
      saved.map(async (p) => ({
        name: p.name,
        owner: { ...p.owner, writer: await RepoWriter.login(net.pdsUrl, p.owner.handle, p.owner.password) },
        meshlet: { ...p.meshlet, writer: await RepoWriter.login(net.pdsUrl, p.meshlet.handle, p.meshlet.password) },
      })),
    )
  }
  const people: Person[] = []
  for (const name of NAMES) people.push({ name, owner: await net.createAccount(name), meshlet: await net.createAccount(`${name}-mesh`) })
  const strip = ({ writer: _w, ...rest }: DevAccount) => rest
  fs.writeFileSync(file, JSON.stringify(people.map((p) => ({ name: p.name, owner: strip(p.owner), meshlet: strip(p.meshlet) })), null, 2), { mode: 0o600 })
  return people
}

function indent(s: string): string {
  return s.replace(/\n$/, '').split('\n').map((l) => `    ${l}`).join('\n')
}
