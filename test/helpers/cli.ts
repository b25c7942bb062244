// Drives the CLI as a user would: a child process per command.
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { expect, vi } from 'vitest'
import type { Command, Values } from '../../src/cli/command.js'
import { CliError } from '../../src/cli/errors.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const TSX = path.join(ROOT, 'node_modules/tsx/dist/esm/index.mjs')
const MAIN = path.join(ROOT, 'src/cli/main.ts')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`meshlet ${args.join(' ')} timed out; stderr: ${stderr}`))
    }, timeoutMs)
    // 'close', not 'exit': on a busy machine the exit can come before the last of its output is read
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: ROOT,
    // the disk floor is the machine's business, not the tests': a CI machine may have little free disk
    env: { ...process.env, LOG_ENABLED: 'false', MESHLET_LOG_LEVEL: 'warn', MESHLET_DISK_FLOOR_MIB: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Resolves with the first stdout line matching, while the process keeps running. */
export function waitForLine(child: ChildProcess, match: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`no line matching ${match} in: ${buf} / ${err}`)), timeoutMs)
    child.stderr!.on('data', (d) => (err += d))
    child.stdout!.on('data', (d) => {
      buf += d
      const line = buf.split('\n').find((l) => match.test(l))
      if (line) {
        clearTimeout(timer)
        resolve(line)
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${code} before ${match}: ${buf} / ${err}`))
    })
  })
}

/** Sends a signal to a child (a `meshlet run` daemon) and resolves when it has exited. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT', timeoutMs = 30_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${child.pid} did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill(signal)
  })
}

/** The environment a member's CLI call needs: its PDS login and the PLC to resolve DIDs. */
export function ownerEnvOf(a: { pdsUrl: string; handle: string; password: string }, plcUrl: string): Record<string, string> {
  return {
    MESHLET_OWNER_PDS: a.pdsUrl,
    MESHLET_OWNER_HANDLE: a.handle,
    MESHLET_OWNER_PASSWORD: a.password,
    MESHLET_PLC_URL: plcUrl,
    MESHLET_INSECURE_HTTP: '1',
  }
}

/**
 * A command object run in this process, as main() in commands.ts runs it: parse strictly,
 * run, one line on failure (a CliError, nothing else). Quicker than a child process, for
 * tests that call a command many times.
 */
export async function runCommand(cmd: Command, args: string[]): Promise<CliResult> {
  const out: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')))
  try {
    const { values, positionals } = parseArgs({ args, options: cmd.options, allowPositionals: true, strict: true })
    await cmd.run(values as Values, positionals)
    return { code: 0, stdout: out.join('\n'), stderr: '' }
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(CliError)
    return { code: 1, stdout: out.join('\n'), stderr: (err as Error).message }
  } finally {
    spy.mockRestore()
  }
}
