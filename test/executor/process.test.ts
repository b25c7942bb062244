import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CpuLimiter } from '../../src/executor/cgroup.js'
import { ProcessDriver } from '../../src/executor/process.js'
import type { ReplicaInfo, ReplicaSpec } from '../../src/executor/types.js'
import { waitFor } from '../../src/util/time.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const TSX = path.join(ROOT, 'node_modules/tsx/dist/esm/index.mjs')

const spec = (command: string[], over: Partial<ReplicaSpec> = {}): ReplicaSpec => ({
  workloadUri: `at://did:plc:owner/commune.scheduler.workload/p${Math.random().toString(36).slice(2)}`,
  replica: 0,
  meshletDid: 'did:plc:processtest',
  image: 'ignored',
  command,
  cpuMillis: 500,
  memoryMiB: 256,
  ...over,
})

const exitOf = (d: ProcessDriver, uri: string) =>
  new Promise<ReplicaInfo>((resolve) => {
    const off = d.onExit((i) => {
      if (i.workloadUri === uri) {
        off()
        resolve(i)
      }
    })
  })

describe('process driver', () => {
  it('captures output and exit code, in its own working directory', async () => {
    const d = new ProcessDriver()
    const s = spec(['sh', '-c', 'pwd; echo to-err >&2; exit 4'])
    const exit = exitOf(d, s.workloadUri)
    expect((await d.start(s)).state).toBe('running')
    const info = await exit
    expect(info.exitCode).toBe(4)
    const logs = d.logs(s.workloadUri, 0)!.data
    expect(logs).toContain('to-err')
    expect(logs).toMatch(/replica-/)
    await d.close()
  })

  it('kills a process that outlives its timeout', async () => {
    const d = new ProcessDriver()
    const s = spec(['sleep', '30'], { timeoutSeconds: 1 })
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    const info = await exit
    expect(info.state).toBe('failed')
    expect(info.message).toMatch(/timed out after 1s/)
    await d.close()
  })

  it('measures cpu time of a busy loop', async () => {
    const d = new ProcessDriver()
    const s = spec(['sh', '-c', 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done'])
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    const info = await exit
    expect(info.exitCode).toBe(0)
    expect(info.cpuMillis).toBeGreaterThan(0)
    expect(info.memoryPeakBytes).toBeGreaterThan(0)
    await d.close()
  })

  it('fails clearly when the command does not exist', async () => {
    const d = new ProcessDriver()
    const info = await d.start(spec(['/nonexistent/binary']))
    expect(['failed', 'running']).toContain(info.state)
    if (info.state === 'running') {
      // prlimit exists, so the spawn succeeded and prlimit itself reports the failure
      const exit = await exitOf(d, info.workloadUri)
      expect(exit.exitCode).not.toBe(0)
    } else {
      expect(info.message).toMatch(/cannot run/)
    }
    await d.close()
  })
})

/** Processes whose command line is exactly `argv` (a unique marker such as `sleep 312345`). */
function processesRunning(argv: string[]): number[] {
  const want = argv.join('\0')
  const out: number[] = []
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '')
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
      if (cmdline === want && state !== 'Z') out.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/** A unique sleep: its command line finds exactly the processes of this test. */
const marker = () => ['sleep', String(300_000 + Math.floor(Math.random() * 600_000))]

describe('process driver containment', () => {
  it('runs in a fresh 0700 directory outside the data dir, removed when the replica ends', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-data-'))
    const d = new ProcessDriver({ dataDir })
    const s = spec(['sh', '-c', 'pwd; stat -c %a .; echo "home=$HOME tmp=$TMPDIR"'])
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    expect((await exit).exitCode).toBe(0)
    const [cwd, mode, env] = d.logs(s.workloadUri, 0)!.data.trim().split('\n')
    expect(path.isAbsolute(cwd)).toBe(true)
    expect(path.relative(dataDir, cwd).startsWith('..')).toBe(true)
    expect(mode).toBe('700')
    expect(env).toBe(`home=${cwd} tmp=${cwd}`)
    expect(fs.existsSync(cwd)).toBe(false)
    // a temp dir inside the data dir is refused outright
    expect(() => new ProcessDriver({ dataDir, workRoot: path.join(dataDir, 'tmp') })).toThrow(/outside the data dir/)
    await d.close()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('stop ends the whole process group, background children included', async () => {
    const d = new ProcessDriver()
    const [a, b] = [marker(), marker()]
    const s = spec(['sh', '-c', `${a.join(' ')} & ${b.join(' ')} & wait`])
    await d.start(s)
    await waitFor(() => processesRunning(a).length && processesRunning(b).length, { timeoutMs: 30_000, what: 'both children running' })
    await d.stop(s.workloadUri, 0)
    await waitFor(() => processesRunning(a).length + processesRunning(b).length === 0, { timeoutMs: 30_000, what: 'no child left' })
    await d.close()
  })

  it('what the main process leaves behind in its group ends when it exits', async () => {
    const d = new ProcessDriver()
    const left = marker()
    const s = spec(['sh', '-c', `${left.join(' ')} > /dev/null 2>&1 & echo started`])
    const exit = exitOf(d, s.workloadUri)
    await d.start(s)
    expect((await exit).exitCode).toBe(0)
    await waitFor(() => processesRunning(left).length === 0, { timeoutMs: 30_000, what: 'the background child gone' })
    await d.close()
  })

  it('a daemon killed with SIGKILL leaves no replica process behind', async () => {
    const [main, child, escaped] = [marker(), marker(), marker()]
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-daemon-')), 'daemon.mts')
    fs.writeFileSync(
      script,
      [
        `import { ProcessDriver } from ${JSON.stringify(path.join(ROOT, 'src/executor/process.ts'))}`,
        // its working directories in the test's own dir: a killed daemon cannot remove them itself
        `const d = new ProcessDriver({ workRoot: ${JSON.stringify(path.dirname(script))} })`,
        `const info = await d.start({ workloadUri: 'at://did:plc:owner/commune.scheduler.workload/3kkilled', replica: 0, meshletDid: 'did:plc:killed', image: 'x', cpuMillis: 500, memoryMiB: 256, command: ['sh', '-c', ${JSON.stringify(`setsid ${escaped.join(' ')} & ${child.join(' ')} & exec ${main.join(' ')}`)}] })`,
        'console.log(`started ${info.state} cpu-limit=${d.cpuLimit}`)',
        'setInterval(() => undefined, 1000)',
      ].join('\n'),
    )
    const daemon = spawn(process.execPath, ['--import', TSX, script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    daemon.stdout!.on('data', (b) => (out += b))
    daemon.stderr!.on('data', (b) => (out += b))
    await waitFor(() => /started running/.test(out) && processesRunning(main).length && processesRunning(child).length, { timeoutMs: 60_000, what: `the replica running (${out})` })
    await waitFor(() => processesRunning(escaped).length, { timeoutMs: 30_000, what: 'the process that left the group running' })
    const exited = new Promise((r) => daemon.once('exit', r))
    daemon.kill('SIGKILL')
    await exited
    await waitFor(() => processesRunning(main).length + processesRunning(child).length === 0, { timeoutMs: 30_000, what: 'no replica process left' })
    // one that left the process group (setsid) is caught by its cgroup, where there is one
    if (/cpu-limit=cgroup/.test(out)) await waitFor(() => processesRunning(escaped).length === 0, { timeoutMs: 30_000, what: 'the escaped process gone' })
    else for (const pid of processesRunning(escaped)) process.kill(pid, 'SIGKILL') // nothing contains it without a cgroup (documented)
    fs.rmSync(path.dirname(script), { recursive: true, force: true })
  })

  it('limits cpu with a cgroup where one is writable, and says what it applies', async () => {
    const d = new ProcessDriver()
    if (d.cpuLimit === 'none') {
      // no cgroup to write (an unprivileged daemon): replicas run at a lower priority instead
      const s = spec(['sh', '-c', 'cut -d" " -f19 /proc/self/stat'])
      const exit = exitOf(d, s.workloadUri)
      await d.start(s)
      await exit
      expect(d.logs(s.workloadUri, 0)!.data.trim()).toBe('10')
    } else {
      // the replica is in its own cgroup with the workload's quota: 200 millicores
      const s = spec(['sh', '-c', 'cat /proc/self/cgroup; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'], { cpuMillis: 200 })
      const exit = exitOf(d, s.workloadUri)
      await d.start(s)
      const info = await exit
      const line = d
        .logs(s.workloadUri, 0)!
        .data.split('\n')
        .find((l) => (d.cpuLimit === 'cgroup2' ? l.startsWith('0::') : /:(?:[a-z,]*,)?cpu(?:,[a-z,]*)?:/.test(l)))!
      expect(line).toMatch(/meshlet-replica-/)
      // however slow the machine, a limited replica never gets more than its share of the wall time
      const wallMs = Date.parse(info.finishedAt!) - Date.parse(info.startedAt!)
      expect(info.cpuMillis!).toBeLessThanOrEqual(0.2 * wallMs + 250)
      // and a process that leaves the group (setsid) is still stopped with the replica: it stays in the cgroup
      const escaped = marker()
      const t = spec(['sh', '-c', `setsid ${escaped.join(' ')} & wait`])
      await d.start(t)
      await waitFor(() => processesRunning(escaped).length, { timeoutMs: 30_000, what: 'the escaped process running' })
      await d.stop(t.workloadUri, 0)
      await waitFor(() => processesRunning(escaped).length === 0, { timeoutMs: 30_000, what: 'the escaped process gone' })
    }
    await d.close()
  })

  it('a cgroup v2 without cpu delegated: the daemon moves itself into a leaf and enables cpu for replicas', () => {
    // a fake cgroupfs: the files the kernel would show
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-cgroupfs-'))
    const svc = path.join(root, 'system.slice/meshlet.service')
    fs.mkdirSync(svc, { recursive: true })
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpu memory pids\n')
    fs.writeFileSync(path.join(svc, 'cgroup.controllers'), 'cpu memory pids\n')
    fs.writeFileSync(path.join(svc, 'cgroup.subtree_control'), '')
    const limiter = CpuLimiter.detect({ root, selfCgroup: '0::/system.slice/meshlet.service\n', pid: 4242 })
    expect(limiter.kind).toBe('cgroup2')
    expect(fs.readFileSync(path.join(svc, 'meshlet-daemon/cgroup.procs'), 'utf8')).toBe('4242')
    expect(fs.readFileSync(path.join(svc, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu')
    const cg = limiter.create('meshlet-replica-1', 250)!
    expect(cg.procsFile).toBe(path.join(svc, 'meshlet-replica-1/cgroup.procs'))
    expect(fs.readFileSync(path.join(svc, 'meshlet-replica-1/cpu.max'), 'utf8')).toBe('25000 100000')
    // no cpu controller at all: no cgroup, and nothing written
    const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-cgroupfs-'))
    fs.writeFileSync(path.join(bare, 'cgroup.controllers'), 'memory\n')
    expect(CpuLimiter.detect({ root: bare, selfCgroup: '0::/\n' }).kind).toBe('none')
    expect(fs.readdirSync(bare)).toEqual(['cgroup.controllers'])
    for (const dir of [root, bare]) fs.rmSync(dir, { recursive: true, force: true })
  })
})
