// `meshlet dev` as a newcomer runs it: starts, places and runs the demo workload, and
// shuts down on Ctrl-C leaving no containers behind.
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { spawnCli, waitForLine } from './helpers/cli.js'
import { requireDocker } from './helpers/docker.js'

const meshletContainers = () =>
  execFileSync('docker', ['ps', '-aq', '--filter', 'label=farm.meshlet.meshlet'], { encoding: 'utf8' }).split('\n').filter(Boolean)

describe('meshlet dev', () => {
  it('runs the demo commune and leaves nothing behind', async () => {
    await requireDocker()
    const before = meshletContainers()
    const child = spawnCli(['dev', '--json'])
    const lines: Record<string, unknown>[] = []
    child.stdout!.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l.startsWith('{')) lines.push(JSON.parse(l))
    })
    await waitForLine(child, /"event":"ready"/, 120_000)
    const events = lines.map((l) => l.event)
    expect(events).toEqual(expect.arrayContaining(['network', 'linked', 'cluster', 'submitted', 'placed', 'succeeded', 'ready']))
    const succeeded = lines.find((l) => l.event === 'succeeded')!
    expect(succeeded.exitCode).toBe(0)
    expect(String(succeeded.output)).toContain('hello from')
    // the demo ran on a neighbour: alice's meshlet is too small for it
    const alice = lines.find((l) => l.event === 'linked' && l.name === 'alice')!
    expect(lines.find((l) => l.event === 'placed')!.meshlet).not.toBe(alice.meshlet)

    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(meshletContainers().filter((id) => !before.includes(id))).toEqual([])
  }, 180_000)
})
