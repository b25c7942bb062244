// `meshlet dev` as a newcomer runs it: starts, places and runs the demo workload, and
// shuts down on Ctrl-C leaving no containers behind.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { spawnCli, waitForLine } from './helpers/cli.js'
import { requireDocker } from './helpers/docker.js'

/** Containers of the given meshlets: other test files run replicas of their own meanwhile. */
const containersOf = (meshlets: string[]) =>
  meshlets.flatMap((did) =>
    execFileSync('docker', ['ps', '-aq', '--filter', `label=farm.meshlet.meshlet=${did}`], { encoding: 'utf8' }).split('\n').filter(Boolean),
  )

describe('meshlet dev', () => {
  it('runs the demo commune and leaves nothing behind', async () => {
    await requireDocker()
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
    const meshlets = lines.filter((l) => l.event === 'linked').map((l) => String(l.meshlet))
    expect(meshlets).toHaveLength(3)
    expect(containersOf(meshlets)).toEqual([])
  }, 180_000)

  it('--data-dir keeps the network and its identities across restarts', async () => {
    await requireDocker()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-devdata-'))
    const runOnce = async () => {
      const child = spawnCli(['dev', '--json', '--data-dir', dir])
      const events: Record<string, unknown>[] = []
      child.stdout!.on('data', (d: Buffer) => {
        for (const l of d.toString().split('\n')) if (l.startsWith('{')) events.push(JSON.parse(l))
      })
      await waitForLine(child, /"event":"ready"/, 120_000)
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGINT')
      await exited
      return events
    }
    const first = await runOnce()
    const second = await runOnce()
    const ids = (evs: Record<string, unknown>[]) => evs.filter((e) => e.event === 'linked').map((e) => [e.owner, e.meshlet])
    expect(ids(second)).toEqual(ids(first))
    expect(second.find((e) => e.event === 'network')).toEqual(first.find((e) => e.event === 'network'))
    expect(second.map((e) => e.event)).toContain('succeeded')
    expect(fs.existsSync(path.join(dir, 'network.json'))).toBe(true)
  }, 300_000)
})
