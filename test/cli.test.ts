import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { verifyLink } from '../src/identity/link.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { waitFor } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { cli, spawnCli, waitForLine, ownerEnvOf } from './helpers/cli.js'
import { requireDocker } from './helpers/docker.js'

let net: DevNetwork
let reader: RepoReader
let alice: DevAccount
let bob: DevAccount
const children: ChildProcess[] = []
let daemonOutput = ''
const meshletOf: Record<string, string> = {}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-cli-'))

const ownerEnv = (a: DevAccount) => ownerEnvOf(a, net.plcUrl)
const spec = (name: string, body: unknown) => {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body))
  return file
}
const workloadCount = async (did: string) => (await reader.list(did, COLLECTIONS.workload)).records.length

beforeAll(async () => {
  // the PDS runs in this test process; every CLI command is a separate child process
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  alice = await net.createAccount('alice')
  bob = await net.createAccount('bob')
})
afterAll(async () => {
  for (const c of children) c.kill('SIGINT')
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))))
  await net?.close()
})

describe('meshlet CLI (child processes against a separately started PDS)', () => {
  it('has --help for every command and a one-line error for an unknown one', async () => {
    for (const cmd of ['dev', 'init', 'run', 'submit', 'status', 'logs', 'delete', 'cluster', 'capacity']) {
      const r = await cli([cmd, '--help'])
      expect(r.code, cmd).toBe(0)
      expect(r.stdout).toContain('Usage: meshlet')
      if (cmd === 'status') expect(r.stdout).toContain('--why')
    }
    const bad = await cli(['frobnicate'])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('rejects bad specs before anything is written', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['missing-image.json', { resources: { cpu: 1, memory: '64Mi' } }, /image is required/],
      ['negative-cpu.json', { image: 'x', resources: { cpu: -1, memory: '64Mi' } }, /cpu must be a positive/],
      ['zero-replicas.json', { image: 'x', replicas: 0, resources: { cpu: 1, memory: '64Mi' } }, /replicas must be/],
      ['unknown.json', { image: 'x', resources: { cpu: 1, memory: '64Mi' }, gpuz: 2 }, /unknown field in spec: gpuz/],
      ['broken.yaml', 'image: [unclosed', /not valid YAML/],
    ]
    for (const [file, body, message] of cases) {
      const r = await cli(['submit', spec(file, body)], ownerEnv(alice))
      expect(r.code, file).toBe(1)
      expect(r.stderr.trim().split('\n'), file).toHaveLength(1)
      expect(r.stderr, file).toMatch(message)
    }
    expect(await workloadCount(alice.did)).toBe(0)
  })

  it('fails with one line on a wrong password, an unreachable PDS and an unknown workload', async () => {
    const wrong = await cli(['status'], { ...ownerEnv(alice), MESHLET_OWNER_PASSWORD: 'nope' })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/wrong handle or password/)
    const unreachable = await cli(['status'], { ...ownerEnv(alice), MESHLET_OWNER_PDS: 'http://127.0.0.1:9' })
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toMatch(/cannot reach the PDS/)
    const unknown = await cli(['status', `at://${alice.did}/${COLLECTIONS.workload}/3kaaaaaaaaaaa`], ownerEnv(alice))
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/unknown workload/)
    for (const r of [wrong, unreachable, unknown]) expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('run fails fast with one line when the configuration is wrong', async () => {
    const missing = await cli(['run', '--pds', net.pdsUrl, '--handle', 'x.test'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/missing configuration: password, dataDir/)
    const driver = await cli(['run', '--pds', net.pdsUrl, '--handle', 'x.test', '--password', 'p', '--data-dir', tmp, '--driver', 'kubernetes'])
    expect(driver.stderr).toMatch(/driver must be docker, process or none/)
    const cluster = await cli(['run', '--pds', net.pdsUrl, '--handle', 'x.test', '--password', 'p', '--data-dir', tmp, '--cluster', 'garden=bob'])
    expect(cluster.stderr).toMatch(/not a DID: bob/)
    const login = await cli(['run', '--pds', net.pdsUrl, '--plc', net.plcUrl, '--handle', alice.handle, '--password', 'wrong', '--data-dir', tmp, '--insecure-http'])
    expect(login.stderr).toMatch(/wrong handle or password/)
    for (const r of [missing, driver, cluster, login]) {
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })

  it('init, run two meshlets, submit, status until succeeded, logs, delete', async () => {
    await requireDocker()
    const dirs = { alice: path.join(tmp, 'alice-mesh'), bob: path.join(tmp, 'bob-mesh') }
    for (const [name, owner] of [['alice', alice], ['bob', bob]] as const) {
      const r = await cli(
        ['init', '--meshlet-handle', `${name}-m.test`, '--meshlet-password', `pw-${name}-m`, '--create', '--data-dir', dirs[name], '--json'],
        ownerEnv(owner),
      )
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout)
      expect((await verifyLink(reader, owner.did, out.meshlet)).ok).toBe(true)
      meshletOf[name] = out.meshlet
    }
    // two daemons, each naming the other's owner in cluster 'pair'
    for (const [name, other] of [['alice', bob], ['bob', alice]] as const) {
      const child = spawnCli(['run', '--config', path.join(dirs[name], 'config.json'), '--port', '0', '--cluster', `pair=${other.did}`, '--json'], { MESHLET_LOG_LEVEL: 'info' })
      children.push(child)
      child.stdout!.on('data', (d) => (daemonOutput += `[${name}] ${d}`))
      child.stderr!.on('data', (d) => (daemonOutput += `[${name}!] ${d}`))
      await waitForLine(child, /"did"/)
    }
    await waitFor(async () => {
      const r = await cli(['cluster', '--json'], ownerEnv(alice))
      return r.code === 0 && JSON.parse(r.stdout)[0]?.members?.[0]?.verified === true
    }, { what: 'cluster verified', timeoutMs: 20_000 })

    const cap = await cli(['capacity', '--json'], ownerEnv(alice))
    expect(cap.code, cap.stderr).toBe(0)
    expect(JSON.parse(cap.stdout)[0]).toMatchObject({ draining: false, drivers: ['docker'] })

    const file = spec('hello.yaml', `name: hello\nimage: ${process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'}\ncommand: [sh, -c, "echo hello-from-cli"]\nresources:\n  cpu: 0.2\n  memory: 32Mi\n`)
    const submitted = await cli(['submit', file, '--json'], ownerEnv(alice))
    expect(submitted.code, submitted.stderr).toBe(0)
    const { uri } = JSON.parse(submitted.stdout)
    let last = ''
    const status = await waitFor(async () => {
      const r = await cli(['status', uri, '--json'], ownerEnv(alice))
      last = r.stdout + r.stderr
      const body = r.code === 0 ? JSON.parse(r.stdout) : undefined
      // a bidder that lost may also report (yielded); the winner's replica is what counts
      return body?.replicas?.find((x: { state: string }) => x.state === 'succeeded') ? body : undefined
    }, { what: 'succeeded', timeoutMs: 90_000, intervalMs: 500 }).catch((err) => {
      console.error(`last status: ${last}\ndaemons:\n${daemonOutput.slice(-6000)}`)
      throw err
    })
    const ran = status.replicas.find((x: { state: string }) => x.state === 'succeeded')
    expect(ran).toMatchObject({ exitCode: 0 })
    expect(ran.cpuMillis).toBeGreaterThanOrEqual(0)
    expect(status.replicas.every((x: { state: string }) => ['succeeded', 'yielded'].includes(x.state))).toBe(true)

    const logs = await cli(['logs', uri], ownerEnv(alice))
    expect(logs.code, logs.stderr).toBe(0)
    expect(logs.stdout).toContain('hello-from-cli')

    const del = await cli(['delete', uri], ownerEnv(alice))
    expect(del.code).toBe(0)
    expect(await workloadCount(alice.did)).toBe(0)
    const again = await cli(['delete', uri], ownerEnv(alice))
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/unknown workload/)
  }, 240_000)

  // The next tests use the two daemons started above (alice's and bob's meshlets, in one cluster).
  const IMAGE = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
  const submit = async (name: string, body: Record<string, unknown>): Promise<string> => {
    const r = await cli(['submit', spec(`${name}.json`, { name, image: IMAGE, command: ['sh', '-c', 'echo hi'], ...body }), '--json'], ownerEnv(alice))
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout).uri
  }
  /** Polls `meshlet status URI --json` until its phase is `phase`. */
  const phaseOf = async (uri: string, phase: string, timeoutMs = 90_000) => {
    let last = ''
    return waitFor(async () => {
      const r = await cli(['status', uri, '--json'], ownerEnv(alice))
      last = r.stdout + r.stderr
      const body = r.code === 0 ? JSON.parse(r.stdout) : undefined
      return body?.phase === phase ? body : undefined
    }, { what: `${uri} ${phase}`, timeoutMs, intervalMs: 500 }).catch((err) => {
      console.error(`last status: ${last}\ndaemons:\n${daemonOutput.slice(-4000)}`)
      throw err
    })
  }
  const started: string[] = []
  const daemonsUp = () => {
    if (children.length < 2 || !meshletOf.alice || !meshletOf.bob) throw new Error('needs the two daemons of the previous test')
  }

  it('more replicas than meshlets: queued with its reason in status, --json and the workload list', async () => {
    daemonsUp()
    const uri = await submit('three', { replicas: 3, resources: { cpu: 0.1, memory: '16Mi' } })
    started.push(uri)
    const body = await phaseOf(uri, 'queued')
    expect(body).toMatchObject({ uri, phase: 'queued', placed: 2, wanted: 3 })
    expect(body.reason).toBe('1 replica(s) queued: every eligible meshlet (2) holds all it can take')
    expect(body.selected.map((s: { meshlet: string }) => s.meshlet).sort()).toEqual([meshletOf.alice, meshletOf.bob].sort())
    expect(Array.isArray(body.replicas)).toBe(true)
    expect(body.whyNot).toEqual([])

    const text = await cli(['status', uri], ownerEnv(alice))
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^queued 2\/3: 1 replica\(s\) queued: every eligible meshlet \(2\) holds all it can take$/m)
    const why = await cli(['status', uri, '--why'], ownerEnv(alice))
    expect(why.code, why.stderr).toBe(0)
    // one line per meshlet: selected (with its replicas' state), or why not (the daemons may re-place a replica meanwhile)
    for (const m of [meshletOf.alice, meshletOf.bob]) {
      expect(why.stdout, why.stdout).toMatch(new RegExp(`^${m}  (selected \\(round \\d+.*|[a-z-]+(:.+)?)$`, 'm'))
      if (!why.stdout.includes(`${m}  selected`)) console.warn(`not selected any more:\n${why.stdout}\n${daemonOutput.slice(-4000)}`)
    }

    const all = await cli(['status'], ownerEnv(alice))
    expect(all.code, all.stderr).toBe(0)
    expect(all.stdout).toMatch(new RegExp(`^${uri} \\(three\\): .*queued 2/3`, 'm'))
    const allJson = await cli(['status', '--json'], ownerEnv(alice))
    expect(allJson.code, allJson.stderr).toBe(0)
    expect(JSON.parse(allJson.stdout).find((w: { uri: string }) => w.uri === uri)).toMatchObject({ name: 'three', phase: 'queued', placed: 2, wanted: 3 })
  }, 180_000)

  it('--why lists each meshlet not taking a replica with its reason', async () => {
    daemonsUp()
    // only alice's meshlet is allowed: bob's is infeasible (not-allowed), the second replica is queued
    const uri = await submit('only-alice', { replicas: 2, resources: { cpu: 0.1, memory: '16Mi' }, constraints: { meshlets: [meshletOf.alice] } })
    started.push(uri)
    const body = await phaseOf(uri, 'queued')
    expect(body).toMatchObject({ placed: 1, wanted: 2 })
    expect(body.whyNot).toEqual([{ meshlet: meshletOf.bob, reason: 'infeasible:not-allowed' }])
    expect(body.reason).toMatch(/1 infeasible:not-allowed/)
    const why = await cli(['status', uri, '--why'], ownerEnv(alice))
    expect(why.code, why.stderr).toBe(0)
    expect(why.stdout).toMatch(/^queued 1\/2: /m)
    expect(why.stdout).toMatch(new RegExp(`^${meshletOf.bob}  infeasible:not-allowed$`, 'm'))
    expect(why.stdout, why.stdout).toMatch(new RegExp(`^${meshletOf.alice}  (selected \\(round \\d+.*|[a-z-]+(:.+)?)$`, 'm'))
    // without --why, no per-meshlet lines
    const plain = await cli(['status', uri], ownerEnv(alice))
    expect(plain.stdout).not.toContain(`${meshletOf.bob}  `)
  }, 180_000)

  it('a workload too large for every meshlet is queued as infeasible:cpu, and failed after its queue timeout', async () => {
    daemonsUp()
    const huge = { replicas: 1, resources: { cpu: 1000, memory: '16Mi' } } // 1000 cores: more than any meshlet offers
    const queued = await submit('huge', huge)
    const timed = await submit('huge-short', { ...huge, queueTimeoutSeconds: 10 })
    started.push(queued, timed)
    // --wait waits through queued and ends with the failure, in one line and a non-zero exit
    const waited = cli(['submit', spec('huge-wait.json', { name: 'huge-wait', image: IMAGE, command: ['sh', '-c', 'echo hi'], ...huge, queueTimeoutSeconds: 10 }), '--wait'], ownerEnv(alice))
    // --timeout: gives up when asked, saying where the workload stands, in one line
    const impatient = await cli(['submit', spec('huge-impatient.json', { name: 'huge-impatient', image: IMAGE, command: ['sh', '-c', 'echo hi'], ...huge }), '--wait', '--timeout', '3'], ownerEnv(alice))
    expect(impatient.code).toBe(1)
    expect(impatient.stderr.trim().split('\n')).toHaveLength(1)
    expect(impatient.stderr).toMatch(/gave up waiting for at:\/\/\S+ to finish after 3 s: (queued 0\/1: 1 replica\(s\) queued: no eligible meshlet|placing 0\/1)/)
    started.push(impatient.stderr.match(/waiting for (at:\/\/\S+) to finish/)![1])

    const body = await phaseOf(queued, 'queued', 30_000)
    expect(body).toMatchObject({ placed: 0, wanted: 1, selected: [] })
    expect(body.reason).toMatch(/no eligible meshlet \(2 infeasible:cpu\)/)
    expect(body.whyNot).toEqual(
      [meshletOf.alice, meshletOf.bob].sort().map((meshlet) => ({ meshlet, reason: 'infeasible:cpu' })),
    )
    const why = await cli(['status', queued, '--why'], ownerEnv(alice))
    expect(why.code, why.stderr).toBe(0)
    expect(why.stdout).toMatch(/^queued 0\/1: 1 replica\(s\) queued: no eligible meshlet \(2 infeasible:cpu\)$/m)
    for (const m of [meshletOf.alice, meshletOf.bob]) expect(why.stdout).toMatch(new RegExp(`^${m}  infeasible:cpu$`, 'm'))

    // the short queue timeout ends it as failed, with the reason
    const failed = await phaseOf(timed, 'failed', 90_000)
    expect(failed.reason).toMatch(/1 replica\(s\) unplaced at the queue timeout: no eligible meshlet \(2 infeasible:cpu\)/)
    const text = await cli(['status', timed], ownerEnv(alice))
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^failed: 1 replica\(s\) unplaced at the queue timeout/m)
    const all = await cli(['status'], ownerEnv(alice))
    expect(all.stdout).toMatch(new RegExp(`^${timed} \\(huge-short\\): failed: `, 'm'))
    expect(all.stdout).toMatch(new RegExp(`^${queued} \\(huge\\): queued 0/1: `, 'm'))

    const w = await waited
    expect(w.code).toBe(1)
    expect(w.stderr.trim().split('\n'), w.stderr).toHaveLength(1)
    expect(w.stderr).toMatch(/^meshlet submit: at:\/\/\S+ failed: 1 replica\(s\) unplaced at the queue timeout: no eligible meshlet/)
    started.push(w.stdout.split('\n')[0])

    for (const uri of started) expect((await cli(['delete', uri], ownerEnv(alice))).code).toBe(0)
  }, 180_000)
})
