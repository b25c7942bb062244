// The smoke test of docker-compose.yml on the real engine: the image built from the local
// base (scripts/make-base-image.sh when it is missing: no registry is reachable here), a
// whole commune brought up, a workload submitted and read back with the host's CLI, a
// meshlet container crashed and restarted by compose (its running replica adopted, not
// started twice), and `down -v` leaving nothing of the project behind. It also measures
// the numbers issue 12 asks for, beside the same submit against `meshlet dev` (npm start).
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { AtpAgent } from '@atproto/api'
import Docker from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LABEL_MESHLET, LABEL_WORKLOAD } from '../src/executor/docker.js'
import { waitFor } from '../src/util/time.js'
import { cli, spawnCli, stopChild, waitForLine } from './helpers/cli.js'
import { requireDocker } from './helpers/docker.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const BASE_IMAGE = process.env.MESHLET_BASE_IMAGE ?? 'meshlet-local/node:22-bookworm-slim'
const IMAGE = process.env.MESHLET_COMPOSE_IMAGE ?? 'meshlet-compose-test:latest'
const TEST_IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
const PROJECT = `meshlet-smoke-${process.pid}`
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}`
const MESHLETS = ['alice', 'bob', 'carol'] as const
const MINUTE = 60_000

const docker = new Docker()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-compose-'))
const numbers: Record<string, number | string> = {}
let env: Record<string, string> = {}
let ports: Record<'plc' | 'pds' | 'appview' | (typeof MESHLETS)[number], number>

interface Run {
  code: number
  out: string
}

/** A command to its end: output and exit code, or a rejection after timeoutMs. */
function run(cmd: string, args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ')} timed out:\n${out.slice(-2000)}`))
    }, o.timeoutMs ?? 5 * MINUTE)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${cmd}: ${err.message}${(err as { code?: string }).code === 'ENOENT' ? ' (apt-get install docker-compose)' : ''}`))
    })
    // 'close', not 'exit': the exit can come before the last of its output is read
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, out })
    })
  })
}

async function compose(args: string[], o: { file?: string; env?: Record<string, string>; timeoutMs?: number; ok?: boolean } = {}): Promise<Run> {
  const r = await run('docker-compose', ['-p', PROJECT, '-f', o.file ?? 'docker-compose.yml', ...args], { env: { ...env, ...o.env }, timeoutMs: o.timeoutMs })
  if (o.ok !== false && r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.code}:\n${r.out.slice(-3000)}`)
  return r
}

/** Free ports from the kernel: other tests on this machine hold the defaults' neighbours. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

const projectFilter = { label: [`com.docker.compose.project=${PROJECT}`] }
const projectContainers = () => docker.listContainers({ all: true, filters: projectFilter })
const serviceContainer = async (service: string) => {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${PROJECT}`, `com.docker.compose.service=${service}`] } })
  if (!c) throw new Error(`no container for service ${service}`)
  return docker.getContainer(c.Id)
}
const replicaContainers = (filter: string) => docker.listContainers({ all: true, filters: { label: [filter] } })

/** The CLI on the host, as alice, with the environment `meshlet network` prints. */
const asAlice = (args: string[], timeoutMs = 2 * MINUTE) =>
  cli(args, {
    MESHLET_OWNER_PDS: `http://localhost:${ports.pds}`,
    MESHLET_PLC_URL: `http://localhost:${ports.plc}`,
    MESHLET_INSECURE_HTTP: '1',
    MESHLET_OWNER_HANDLE: 'alice.test',
    MESHLET_OWNER_PASSWORD: PASSWORD,
  }, timeoutMs)

async function health(port: number): Promise<{ did: string; status: string } | undefined> {
  try {
    const res = await fetch(`http://localhost:${port}/xrpc/farm.meshlet.health`)
    return res.ok ? ((await res.json()) as { did: string; status: string }) : undefined
  } catch {
    return undefined
  }
}

interface ReplicaView {
  meshlet: string
  replica: number
  state: string
}

async function replicasOf(uri: string): Promise<ReplicaView[]> {
  const r = await asAlice(['status', uri, '--json'])
  if (r.code !== 0) return []
  return (JSON.parse(r.stdout) as { replicas: ReplicaView[] }).replicas
}

function specFile(name: string, command: string[]): string {
  const file = path.join(tmp, `${name}.json`)
  fs.writeFileSync(file, JSON.stringify({ name, image: TEST_IMAGE, command, resources: { cpu: 0.1, memory: '32Mi' } }))
  return file
}

/** Wall time of `meshlet submit --wait` for a job that prints one line, and the line back through `meshlet logs`. */
async function submitAndWait(call: (args: string[], timeoutMs?: number) => ReturnType<typeof cli>, name: string, diagnose?: () => Promise<string>) {
  const started = Date.now()
  // the CLI gives up first, with the placement's phase and reason in its one line
  const r = await call(['submit', specFile(name, ['sh', '-c', `echo ${name} ran here`]), '--wait', '--timeout', '480'], 10 * MINUTE)
  const ms = Date.now() - started
  if (r.code !== 0 && diagnose) console.error(`submit of ${name} failed: ${r.stderr}\n${await diagnose().catch((err: Error) => `(no diagnosis: ${err.message})`)}`)
  expect(r.code, r.stderr).toBe(0)
  const [uri, ...lines] = r.stdout.trim().split('\n')
  expect(lines.join('\n')).toMatch(/: succeeded, exit 0/)
  return { uri, ms }
}

describe('docker-compose: a commune on one host', () => {
  beforeAll(async () => {
    await requireDocker()
    const version = await run('docker-compose', ['version', '--short'])
    if (version.code !== 0) throw new Error(`docker-compose does not run: ${version.out}`)
    ports = { plc: await freePort(), pds: await freePort(), appview: await freePort(), alice: await freePort(), bob: await freePort(), carol: await freePort() }
    const sock = fs.statSync('/var/run/docker.sock')
    env = {
      MESHLET_IMAGE: IMAGE,
      MESHLET_BASE_IMAGE: BASE_IMAGE,
      MESHLET_COMMUNE_PASSWORD: PASSWORD,
      MESHLET_PLC_PORT: String(ports.plc),
      MESHLET_PDS_PORT: String(ports.pds),
      MESHLET_ALICE_PORT: String(ports.alice),
      MESHLET_BOB_PORT: String(ports.bob),
      MESHLET_CAROL_PORT: String(ports.carol),
      MESHLET_APPVIEW_PORT: String(ports.appview),
      DOCKER_GID: String(sock.gid),
      MESHLET_LOG_LEVEL: 'info',
      // the host's free disk is not what this test is about: a CI machine full of clones made every meshlet decline
      MESHLET_DISK_FLOOR_MIB: '1024',
    }
    if (!(await docker.getImage(BASE_IMAGE).inspect().then(() => true, () => false))) {
      const made = await run('bash', ['scripts/make-base-image.sh', BASE_IMAGE], { timeoutMs: 30 * MINUTE })
      if (made.code !== 0) throw new Error(`scripts/make-base-image.sh failed:\n${made.out.slice(-3000)}`)
    }
    const started = Date.now()
    await compose(['build', 'network'], { timeoutMs: 40 * MINUTE })
    numbers.buildSeconds = Math.round((Date.now() - started) / 1000)
    const info = await docker.getImage(IMAGE).inspect()
    numbers.imageMB = Math.round(info.Size / 1e6)
  }, 75 * MINUTE)

  afterAll(async () => {
    // whatever a failure left: the project's containers and volumes, and any replica of its meshlets
    await compose(['down', '-v', '--remove-orphans', '-t', '60'], { ok: false, timeoutMs: 5 * MINUTE }).catch(() => undefined)
    console.log(`compose numbers: ${JSON.stringify(numbers)}`)
  }, 6 * MINUTE)

  it('validates both compose files', async () => {
    const main = await compose(['config', '-q'])
    expect(main.code).toBe(0)
    const joinEnv = {
      MESHLET_PDS: 'https://pds.example.com',
      MESHLET_HANDLE: 'alice-mesh.example.com',
      MESHLET_PASSWORD: 'app-password',
      MESHLET_PUBLIC_URL: 'https://mesh.example.com',
    }
    const join = await compose(['config', '-q'], { file: 'docker-compose.join.yml', env: joinEnv })
    expect(join.code).toBe(0)
    // a missing required variable is named, before anything starts
    const missing = await compose(['config', '-q'], { file: 'docker-compose.join.yml', env: { ...joinEnv, MESHLET_PASSWORD: '' }, ok: false })
    expect(missing.code).not.toBe(0)
    expect(missing.out).toMatch(/MESHLET_PASSWORD/)
  })

  it('comes up healthy, runs a workload from the host CLI, adopts replicas across a crash, and leaves nothing behind', async () => {
    // up → every service healthy
    const upAt = Date.now()
    await compose(['up', '-d', '--no-build'], { timeoutMs: 10 * MINUTE })
    await waitFor(
      async () => {
        const list = await projectContainers()
        // the network, the meshlets and the appview
        if (list.length !== 2 + MESHLETS.length) return false
        const states = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()))
        return states.every((s) => s.State.Health?.Status === 'healthy')
      },
      { timeoutMs: 10 * MINUTE, intervalMs: 1000, what: 'every service of the commune to be healthy' },
    )
    numbers.upToHealthySeconds = Math.round((Date.now() - upAt) / 1000)
    const didOf: Record<string, string> = {}
    for (const m of MESHLETS) didOf[m] = (await health(ports[m]))!.did
    const serviceOf = (did: string) => MESHLETS.find((m) => didOf[m] === did)!

    // the cluster formed: alice's CLI sees bob and carol verified
    await waitFor(
      async () => {
        const r = await asAlice(['cluster', '--json'])
        if (r.code !== 0) return false
        const views = JSON.parse(r.stdout) as { members: { verified: boolean }[] }[]
        return views.length === 1 && views[0].members.filter((x) => x.verified).length === 2
      },
      { timeoutMs: 5 * MINUTE, intervalMs: 2000, what: "alice's cluster to verify bob and carol" },
    )

    // a job submitted from the host succeeds, and its output comes back through the meshlet that ran it
    // what the meshlets logged, should the job not finish
    const composeLogs = async () => (await compose(['logs', '--no-color', '--tail', '150', ...MESHLETS], { ok: false, timeoutMs: MINUTE })).out
    const hello = await submitAndWait(asAlice, 'hello-compose', composeLogs)
    numbers.composeSubmitToSucceededMs = hello.ms
    const logs = await asAlice(['logs', hello.uri])
    expect(logs.code, logs.stderr).toBe(0)
    expect(logs.stdout).toContain('hello-compose ran here')
    // the appview indexed the commune: the three meshlets, and the job as succeeded
    const appview = async <T>(method: string): Promise<T | undefined> => {
      const res = await fetch(`http://localhost:${ports.appview}/xrpc/commune.appview.${method}`).catch(() => undefined)
      return res?.ok ? ((await res.json()) as T) : undefined
    }
    await waitFor(
      async () => {
        const meshlets = await appview<{ meshlets: { did: string }[] }>('listMeshlets')
        const workloads = await appview<{ workloads: { uri: string; state: string }[] }>('listWorkloads')
        const known = new Set(meshlets?.meshlets.map((m) => m.did))
        return MESHLETS.every((m) => known.has(didOf[m])) && workloads?.workloads.find((w) => w.uri === hello.uri)?.state === 'succeeded'
      },
      { timeoutMs: 5 * MINUTE, intervalMs: 2000, what: 'the appview to show the meshlets and the finished job' },
    )

    // a long job: running on one meshlet, in one container
    const long = await asAlice(['submit', specFile('long', ['sh', '-c', 'echo long job started; exec sleep 3600'])])
    expect(long.code, long.stderr).toBe(0)
    const longUri = long.stdout.trim()
    const running = await waitFor(
      async () => (await replicasOf(longUri)).find((r) => r.state === 'running'),
      { timeoutMs: 5 * MINUTE, intervalMs: 2000, what: 'the long job to run' },
    )
    const [replica] = await waitFor(async () => {
      const list = await replicaContainers(`${LABEL_WORKLOAD}=${longUri}`)
      return list.length ? list : undefined
    }, { timeoutMs: MINUTE, intervalMs: 500, what: "the long job's container" })
    const before = await docker.getContainer(replica.Id).inspect()
    expect(before.Config.Labels[LABEL_MESHLET]).toBe(running.meshlet)

    // crash that meshlet's daemon (SIGKILL: no chance to stop anything); compose's restart policy brings it back
    const meshletContainer = await serviceContainer(serviceOf(running.meshlet))
    const restartsBefore = (await meshletContainer.inspect()).RestartCount
    const crashedAt = Math.floor(Date.now() / 1000)
    const kill = await meshletContainer.exec({ Cmd: ['sh', '-c', 'kill -9 $(cat /proc/1/task/1/children)'], AttachStdout: true, AttachStderr: true })
    await kill.start({})
    await waitFor(
      async () => {
        const s = await meshletContainer.inspect()
        return s.RestartCount > restartsBefore && s.State.Running
      },
      { timeoutMs: 3 * MINUTE, intervalMs: 500, what: `${serviceOf(running.meshlet)} to be restarted by compose` },
    )
    // the restarted daemon says it adopted the container, and serves its output again
    await waitFor(
      async () => {
        const out = await meshletContainer.logs({ stdout: true, stderr: true, since: crashedAt })
        return out
          .toString('utf8')
          .split('\n')
          .some((line) => /"msg":"reconciled containers"/.test(line) && /"adopted":[1-9]/.test(line))
      },
      { timeoutMs: 5 * MINUTE, intervalMs: 1000, what: 'the restarted meshlet to adopt its replica' },
    )
    await waitFor(
      async () => {
        const r = await asAlice(['logs', longUri])
        return r.code === 0 && r.stdout.includes('long job started')
      },
      { timeoutMs: 3 * MINUTE, intervalMs: 2000, what: "the adopted replica's output" },
    )
    // not started twice: the very same container, never restarted, and no other anywhere
    const after = await docker.getContainer(replica.Id).inspect()
    expect(after.State.Running).toBe(true)
    expect(after.State.StartedAt).toBe(before.State.StartedAt)
    expect(after.RestartCount).toBe(0)
    expect((await replicaContainers(`${LABEL_WORKLOAD}=${longUri}`)).map((c) => c.Id)).toEqual([replica.Id])
    const states = await replicasOf(longUri)
    expect(states.filter((r) => r.state === 'running')).toEqual([expect.objectContaining({ meshlet: running.meshlet })])

    // stop: SIGTERM to each daemon, which stops and removes its replicas and exits cleanly, before the network stops
    await compose(['stop'], { timeoutMs: 10 * MINUTE })
    for (const m of MESHLETS) {
      const s = await (await serviceContainer(m)).inspect()
      expect(s.State.Running, m).toBe(false)
      expect(s.State.ExitCode, `${m} exit code`).toBe(0)
      expect(await replicaContainers(`${LABEL_MESHLET}=${didOf[m]}`), `${m}'s replicas`).toEqual([])
    }

    // down -v: no container, volume or network of the project remains
    await compose(['down', '-v', '--remove-orphans'], { timeoutMs: 5 * MINUTE })
    expect(await projectContainers()).toEqual([])
    expect((await docker.listVolumes({ filters: projectFilter })).Volumes ?? []).toEqual([])
    expect(await docker.listNetworks({ filters: projectFilter })).toEqual([])
    for (const m of MESHLETS) expect(await replicaContainers(`${LABEL_MESHLET}=${didOf[m]}`)).toEqual([])
  }, 40 * MINUTE)

  it('measures the same submit against `meshlet dev` (npm start), for comparison', async () => {
    const dev = spawnCli(['dev', '--json', '--data-dir', path.join(tmp, 'dev')])
    try {
      const ready = JSON.parse(await waitForLine(dev, /"event":"ready"/, 10 * MINUTE)) as { env: string }
      const devEnv = Object.fromEntries(ready.env.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
      const asDevAlice = (args: string[], timeoutMs = 2 * MINUTE) => cli(args, devEnv, timeoutMs)
      const hello = await submitAndWait(asDevAlice, 'hello-dev')
      numbers.devSubmitToSucceededMs = hello.ms
    } finally {
      await stopChild(dev, 'SIGINT', 2 * MINUTE)
    }
  }, 20 * MINUTE)
})

describe('meshlet network (the network service, here as a host process)', () => {
  const dir = path.join(tmp, 'network')
  const children: ChildProcess[] = []
  afterAll(async () => {
    await Promise.all(children.map((c) => stopChild(c, 'SIGKILL')))
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses bad options with one line, before anything starts', async () => {
    const cases: [string[], RegExp][] = [
      [['--plc-port', 'x'], /--plc-port must be a port number/],
      [['--plc-port', '4000', '--pds-port', '4000'], /different ports/],
      [['--account', 'bob@example'], /--account must be a name or a handle under \.test/],
      [['--account', 'bob.example.com', '--password', 'pw'], /--account must be a name or a handle under \.test/],
      [['--account', 'bob'], /--account needs --password/],
    ]
    for (const [args, message] of cases) {
      const r = await cli(['network', '--data-dir', dir, ...args])
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
  })

  it('keeps its accounts, DIDs and ports across restarts, accounts made by others included', async () => {
    const [plc, pds, other] = [await freePort(), await freePort(), await freePort()]
    const start = (args: string[]) => {
      const child = spawnCli(['network', '--data-dir', dir, '--json', ...args])
      children.push(child)
      return child
    }
    type Ready = { plc: string; pds: string; accounts: { handle: string; did: string; created: boolean }[] }
    let child = start(['--plc-port', String(plc), '--pds-port', String(pds), '--account', 'alice', '--password', 'pw-alice'])
    const first = JSON.parse(await waitForLine(child, /"event":"ready"/, 3 * MINUTE)) as Ready
    expect(first.accounts).toEqual([expect.objectContaining({ handle: 'alice.test', created: true })])
    expect(first.pds).toBe(`http://localhost:${pds}`)
    // what a meshlet's `init --create` does: an account made straight on the PDS, whose PLC operation must survive too
    const made = await new AtpAgent({ service: first.pds }).createAccount({ handle: 'alice-mesh.test', password: 'pw-mesh', email: 'mesh@example.com' })
    expect(await stopChild(child, 'SIGTERM', 2 * MINUTE)).toBe(0)

    // no port flags: the saved ones; the same accounts, not made again
    child = start(['--account', 'alice.test', '--password', 'pw-alice'])
    try {
      const second = JSON.parse(await waitForLine(child, /"event":"ready"/, 3 * MINUTE)) as Ready
      expect([second.plc, second.pds]).toEqual([first.plc, first.pds])
      expect(second.accounts).toEqual([{ handle: 'alice.test', did: first.accounts[0].did, created: false }])
      // the PLC was refilled: the DID made by someone else resolves, and its account logs in
      const doc = await fetch(`${second.plc}/${made.data.did}`)
      expect(doc.ok).toBe(true)
      expect(((await doc.json()) as { alsoKnownAs: string[] }).alsoKnownAs).toContain('at://alice-mesh.test')
      const login = await new AtpAgent({ service: second.pds }).login({ identifier: 'alice-mesh.test', password: 'pw-mesh' })
      expect(login.data.did).toBe(made.data.did)
    } finally {
      expect(await stopChild(child, 'SIGTERM', 2 * MINUTE)).toBe(0)
    }

    // other ports for the same data would break every DID document: refused in one line
    const clash = await cli(['network', '--data-dir', dir, '--pds-port', String(other)])
    expect(clash.code).toBe(1)
    expect(clash.stderr.trim().split('\n')).toHaveLength(1)
    expect(clash.stderr).toMatch(new RegExp(`made with PDS port ${pds} \\(not ${other}\\)`))
  }, 10 * MINUTE)
})
