// Pairing without editing config, on the real PDS: `meshlet init --pair` sets a meshlet
// up with no owner credentials, `meshlet run` (a child process) prints a code, `meshlet
// pair` on the host issues more, and the owner redeems one with `meshlet pair --meshlet`.
// The commands' run() is called in-process with parsed flags (they are registered in
// commands.ts separately); `meshlet run` is the real CLI.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initCommand, pairCommands } from '../src/cli/pair.js'
import { PairingCodes, OTP_TTL_MS } from '../src/daemon/pairing.js'
import { LocalDb } from '../src/db/index.js'
import type { DevAccount, DevNetwork } from '../src/dev/network.js'
import { verifyLink } from '../src/identity/link.js'
import { COLLECTIONS } from '../src/records/index.js'
import { RepoReader } from '../src/repo/reader.js'
import { AuditLog } from '../src/daemon/audit.js'
import { waitFor } from '../src/util/time.js'
import { startNetwork } from './helpers/commune.js'
import { spawnCli, stopChild, waitForLine } from './helpers/cli.js'
import { runCommand, type CliResult } from './helpers/cli.js'

let net: DevNetwork
let reader: RepoReader
let olga: DevAccount, pete: DevAccount
let daemon: ChildProcess | undefined
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-pairing-'))
const dataDir = path.join(tmp, 'state')
let meshletDid: string
let configFile: string
let runCode: string

/** stderr is the error's message: one line, from a CliError (a deliberate refusal, not a crash). */
type Ran = CliResult

const run = runCommand

const ownerFlags = (a: DevAccount) => ['--pds', a.pdsUrl, '--handle', a.handle, '--password', a.password, '--plc', net.plcUrl, '--insecure-http']
const pairAs = (a: DevAccount, code: string, target = meshletDid) => run(pairCommands.pair, ['--meshlet', target, code, '--json', ...ownerFlags(a)])
const wrongCode = (right: string[]) => ['00000000', '11111111', '22222222', '33333333'].find((c) => !right.includes(c))!
const hostCode = async () => {
  const r = await run(pairCommands.pair, ['--data-dir', dataDir, '--json'])
  expect(r.code, r.stderr).toBe(0)
  const out = JSON.parse(r.stdout) as { code: string; expiresAt: string; meshlet: string }
  expect(out.meshlet).toBe(meshletDid)
  return out.code
}
const refused = (r: Ran, message: RegExp) => {
  expect(r.code, r.stdout).toBe(1)
  expect(r.stderr).toMatch(message)
  expect(r.stderr.split('\n')).toHaveLength(1)
}
const mode = (f: string) => fs.statSync(f).mode & 0o777

beforeAll(async () => {
  net = await startNetwork()
  reader = new RepoReader(net.idResolver)
  olga = await net.createAccount('olga')
  pete = await net.createAccount('pete')
}, 60_000)

afterAll(async () => {
  if (daemon) await stopChild(daemon)
  await net?.close()
})

describe('pairing with one-time codes, no config to edit', () => {
  it('init --pair: no owner credentials, no link, a private config and state', async () => {
    // a data dir that exists with default permissions is narrowed, not only a new one
    fs.mkdirSync(dataDir, { mode: 0o755 })
    fs.chmodSync(dataDir, 0o755)
    const handle = `lone-${Date.now().toString(36)}.test`
    const r = await run(initCommand, ['--meshlet-handle', handle, '--meshlet-password', 'pw-lone', '--meshlet-pds', net.pdsUrl, '--create', '--plc', net.plcUrl, '--insecure-http', '--data-dir', dataDir, '--pair', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    meshletDid = out.meshlet
    configFile = out.configFile
    expect(out.pairing.code).toMatch(/^\d{8}$/)
    expect(Date.parse(out.pairing.expiresAt) - Date.now()).toBeLessThanOrEqual(OTP_TTL_MS)
    // nothing linked: no meshletOwner record yet
    expect((await reader.get(meshletDid, COLLECTIONS.meshletOwner, 'self')).ok).toBe(false)
    expect(mode(dataDir)).toBe(0o700)
    expect(mode(configFile)).toBe(0o600)
    expect(mode(path.join(dataDir, 'meshlet.sqlite'))).toBe(0o600)
    // the code is stored hashed: the database does not contain it
    expect(fs.readFileSync(path.join(dataDir, 'meshlet.sqlite')).includes(Buffer.from(out.pairing.code))).toBe(false)
  })

  it('meshlet run prints a code while the meshlet has no verified owner', async () => {
    // a config loosened after the fact is narrowed again when the daemon reads it
    fs.chmodSync(configFile, 0o644)
    daemon = spawnCli(['run', '--config', configFile, '--port', '0', '--driver', 'none', '--json'])
    const line = await waitForLine(daemon, /"did"/, 90_000)
    const info = JSON.parse(line) as { did: string; pairing?: { code: string; expiresAt: string } }
    expect(info.did).toBe(meshletDid)
    expect(info.pairing?.code).toMatch(/^\d{8}$/)
    runCode = info.pairing!.code
    expect(mode(configFile)).toBe(0o600)
    for (const f of ['meshlet.sqlite', 'meshlet.sqlite-wal', 'meshlet.sqlite-shm']) expect(mode(path.join(dataDir, f)), f).toBe(0o600)
  }, 120_000)

  it('a wrong code is refused, with the tries left', async () => {
    const r = await pairAs(olga, wrongCode([runCode]))
    refused(r, /wrong pairing code \(4 attempts left\)/)
  })

  it('an expired code is refused as expired (issued by a host clock 11 minutes back)', async () => {
    const db = new LocalDb(path.join(dataDir, 'meshlet.sqlite'))
    const { code } = new PairingCodes(db, () => Date.now() - OTP_TTL_MS - 60_000).issue()
    db.close()
    refused(await pairAs(olga, code), /pairing code expired/)
  })

  it('after 5 wrong tries a code is void: the sixth try fails even with the right code', async () => {
    const code = await hostCode()
    const wrong = wrongCode([code, runCode])
    const left: string[] = []
    for (let i = 0; i < 5; i++) {
      const r = await pairAs(olga, wrong)
      refused(r, /wrong pairing code/)
      left.push(r.stderr)
    }
    // the fresh code had all 5; every wrong try (any code's) counted against it
    expect(left.slice(0, 4).map((l) => /\((\d) attempts? left\)/.exec(l)?.[1])).toEqual(['4', '3', '2', '1'])
    expect(left[4]).toMatch(/no code is live any more/)
    refused(await pairAs(olga, code), /void after 5 wrong attempts/)
    // the code printed by run was spent by the same tries
    refused(await pairAs(olga, runCode), /void after 5 wrong attempts/)
    expect((await reader.get(meshletDid, COLLECTIONS.meshletOwner, 'self')).ok).toBe(false)
  })

  it('happy path: the owner redeems a code; both link records are written and verify', async () => {
    const code = await hostCode()
    const r = await pairAs(olga, code.replace(/^(\d{4})/, '$1 '))
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.replace(/^[^{]*/, ''))).toEqual({ meshlet: meshletDid, owner: olga.did, verified: true })
    // the link names the caller, the token's issuer
    const back = await reader.get(meshletDid, COLLECTIONS.meshletOwner, 'self')
    expect(back.ok && back.value.record.owner).toBe(olga.did)
    expect((await verifyLink(reader, olga.did, meshletDid)).ok).toBe(true)

    // replaying the used code is refused
    refused(await pairAs(olga, code), /pairing code already used/)
    // and another owner, even with a fresh code, is refused: the meshlet is paired
    refused(await pairAs(pete, await hostCode()), /already paired with/)
    expect((await verifyLink(reader, olga.did, meshletDid)).ok).toBe(true)
  })

  it('every pairing attempt is in the audit log, with its caller and outcome', async () => {
    const db = new LocalDb(path.join(dataDir, 'meshlet.sqlite'))
    const log = new AuditLog(db)
    // a call's own entry is written when its response is done, just after the caller has it
    const all = await waitFor(() => {
      const entries = log.list({ limit: 1000 }).entries
      const calls = entries.filter((e) => e.action === 'farm.meshlet.pair').length
      return calls === entries.filter((e) => e.action === 'pairing.redeem').length ? entries : undefined
    }, { what: 'an entry for each pair call' }).finally(() => db.close())
    const attempts = all.filter((e) => e.action === 'pairing.redeem').reverse()
    const summary = attempts.map((e) => `${e.actor === olga.did ? 'olga' : e.actor === pete.did ? 'pete' : e.actor} ${e.outcome} ${e.detail?.reason ?? ''}`.trim())
    expect(summary).toEqual([
      'olga refused wrong',
      'olga refused expired',
      ...Array(5).fill('olga refused wrong'),
      'olga refused void',
      'olga refused void',
      'olga paired',
      'olga refused used',
      'pete refused already-paired',
    ])
    // and each call as an XRPC call too
    const calls = all.filter((e) => e.action === 'farm.meshlet.pair').reverse()
    expect(calls.map((e) => `${e.outcome} ${e.detail?.status ?? ''} ${e.detail?.error ?? ''}`.trim())).toEqual([
      'refused 400 InvalidOtp',
      'refused 400 ExpiredOtp',
      ...Array(5).fill('refused 400 InvalidOtp'),
      'refused 400 VoidOtp',
      'refused 400 VoidOtp',
      'ok',
      'refused 400 UsedOtp',
      'refused 403 AlreadyPaired',
    ])
    const issued = all.filter((e) => e.action === 'pairing.issue').map((e) => e.detail?.via)
    expect(issued.sort()).toEqual(['cli', 'cli', 'cli', 'init', 'run'])
  })

  it('one-line failures: an unreachable meshlet, a meshlet with no endpoint, a malformed code, no state on the host', async () => {
    refused(await pairAs(olga, '12345678', 'http://127.0.0.1:1'), /unreachable/)
    refused(await pairAs(olga, '12345678', pete.did), /cannot find|no XRPC endpoint/)
    refused(await pairAs(olga, '1234'), /a pairing code is 8 digits/)
    refused(await run(pairCommands.pair, ['--data-dir', path.join(tmp, 'nothing-here')]), /no meshlet state in/)
    refused(await run(pairCommands.pair, ['12345678', '--data-dir', dataDir]), /name the meshlet/)
  })
})

describe('PairingCodes, on a local database with a moved clock', () => {
  const codes = () => {
    let now = Date.parse('2030-01-01T00:00:00Z')
    const db = new LocalDb(':memory:')
    return { pairing: new PairingCodes(db, () => now), tick: (ms: number) => (now += ms), db }
  }

  it('is valid for exactly 10 minutes', async () => {
    const { pairing, tick } = codes()
    const a = pairing.issue()
    const b = pairing.issue()
    tick(OTP_TTL_MS - 1)
    expect((await pairing.redeem(a.code, 'did:example:o')).ok).toBe(true)
    tick(1)
    expect(await pairing.redeem(b.code, 'did:example:o')).toEqual({ ok: false, reason: 'expired' })
  })

  it('counts a wrong try against every live code; a redeemed code given back is live again', async () => {
    const { pairing } = codes()
    const a = pairing.issue()
    const b = pairing.issue()
    const wrong = ['00000000', '11111111', '22222222'].find((c) => c !== a.code && c !== b.code)!
    for (const left of [4, 3, 2, 1]) expect(await pairing.redeem(wrong, 'did:example:x')).toEqual({ ok: false, reason: 'wrong', attemptsLeft: left })
    const redeemed = await pairing.redeem(a.code, 'did:example:o')
    expect(redeemed.ok).toBe(true)
    expect(pairing.live()).toBe(1)
    if (redeemed.ok) pairing.release(redeemed.id)
    expect(pairing.live()).toBe(2)
    expect(await pairing.redeem(wrong, 'did:example:x')).toEqual({ ok: false, reason: 'wrong', attemptsLeft: 0 })
    expect(pairing.live()).toBe(0)
    expect(await pairing.redeem(b.code, 'did:example:o')).toEqual({ ok: false, reason: 'void' })
    expect(await pairing.redeem('not8digits', 'did:example:o')).toEqual({ ok: false, reason: 'wrong', attemptsLeft: 0 })
  })
})
