// A workload spec as a person writes it (JSON or YAML), checked strictly and turned into
// a lexicon-valid commune.scheduler.workload record. Unknown fields are errors: a typo
// must not silently drop a constraint.
import fs from 'node:fs'
import YAML from 'yaml'
import { COLLECTIONS, validateRecord, type WorkloadRecord } from '../records/index.js'
import { nowIso } from '../util/time.js'

export class SpecError extends Error {
  override name = 'SpecError'
}

const TOP = new Set(['name', 'image', 'command', 'env', 'secrets', 'resources', 'replicas', 'constraints', 'driver', 'allowPacking', 'bidWindowMs', 'queueTimeoutSeconds', 'answerDeadlineSeconds', 'timeoutSeconds', 'tier'])
const RESOURCES = new Set(['cpu', 'cpuMillis', 'memory', 'memoryMiB', 'storage', 'storageMiB', 'gpus'])
const CONSTRAINTS = new Set(['arch', 'labels', 'meshlets', 'gpuModel'])

export interface ParsedSpec {
  record: WorkloadRecord
  /** Secret values in clear: sealed to each candidate meshlet's key before writing. */
  secrets: Record<string, string>
}

export function loadSpec(file: string): ParsedSpec {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new SpecError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text)
  } catch (err) {
    throw new SpecError(`${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message.split('\n')[0]}`)
  }
  return parseSpec(raw)
}

export function parseSpec(raw: unknown): ParsedSpec {
  if (!isObject(raw)) throw new SpecError('a workload spec must be an object')
  unknownKeys(raw, TOP, 'spec')
  if (typeof raw.image !== 'string' || raw.image.length === 0) throw new SpecError('image is required (e.g. "busybox:latest" or "name@sha256:...")')
  if (!isObject(raw.resources)) throw new SpecError('resources is required (cpu and memory)')
  unknownKeys(raw.resources, RESOURCES, 'resources')
  const cpuMillis = raw.resources.cpuMillis ?? (raw.resources.cpu !== undefined ? parseCpu(raw.resources.cpu) : undefined)
  const memoryMiB = raw.resources.memoryMiB ?? (raw.resources.memory !== undefined ? parseMemory(raw.resources.memory, 'memory') : undefined)
  const storageMiB = raw.resources.storageMiB ?? (raw.resources.storage !== undefined ? parseMemory(raw.resources.storage, 'storage') : undefined)
  if (cpuMillis === undefined) throw new SpecError('resources.cpu is required (e.g. 0.5 or "500m")')
  if (memoryMiB === undefined) throw new SpecError('resources.memory is required (e.g. "256Mi")')
  if (raw.constraints !== undefined) {
    if (!isObject(raw.constraints)) throw new SpecError('constraints must be an object')
    unknownKeys(raw.constraints, CONSTRAINTS, 'constraints')
  }
  const replicas = raw.replicas ?? 1
  if (!Number.isInteger(replicas) || (replicas as number) < 1) throw new SpecError(`replicas must be a whole number ≥ 1, not ${JSON.stringify(raw.replicas)}`)
  const env = raw.env === undefined ? undefined : toEnv(raw.env)
  const secrets = raw.secrets === undefined ? {} : toSecrets(raw.secrets)
  const record = {
    $type: COLLECTIONS.workload,
    ...(raw.name !== undefined ? { name: raw.name } : {}),
    image: raw.image,
    ...(raw.command !== undefined ? { command: raw.command } : {}),
    ...(env ? { env } : {}),
    resources: {
      cpuMillis,
      memoryMiB,
      ...(storageMiB !== undefined ? { storageMiB } : {}),
      ...(raw.resources.gpus !== undefined ? { gpus: raw.resources.gpus } : {}),
    },
    replicas,
    ...pick(raw, ['constraints', 'driver', 'allowPacking', 'bidWindowMs', 'queueTimeoutSeconds', 'answerDeadlineSeconds', 'timeoutSeconds', 'tier']),
    createdAt: nowIso(),
  }
  const valid = validateRecord(COLLECTIONS.workload, record)
  if (!valid.ok) throw new SpecError(valid.error.replace(/^Record/, 'spec'))
  return { record: valid.record, secrets }
}

function parseCpu(v: unknown): number {
  if (typeof v === 'number' && v > 0) return Math.round(v * 1000)
  if (typeof v === 'string') {
    const m = /^(\d+)m$/.exec(v.trim())
    if (m && Number(m[1]) > 0) return Number(m[1])
    const n = Number(v)
    if (Number.isFinite(n) && n > 0) return Math.round(n * 1000)
  }
  throw new SpecError(`resources.cpu must be a positive number of cores or millicores ("500m"), not ${JSON.stringify(v)}`)
}

function parseMemory(v: unknown, what: string): number {
  if (typeof v === 'number' && v > 0 && Number.isInteger(v)) return v
  if (typeof v === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?B?$/i.exec(v.trim())
    if (m && Number(m[1]) > 0) {
      const unit = (m[2] ?? 'Mi').toLowerCase().replace(/i$/, '')
      const mib = Number(m[1]) * ({ k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 } as Record<string, number>)[unit]
      return Math.max(1, Math.ceil(mib))
    }
  }
  throw new SpecError(`resources.${what} must be a positive size like "256Mi" or "2Gi", not ${JSON.stringify(v)}`)
}

function toEnv(v: unknown): { name: string; value: string }[] {
  if (Array.isArray(v)) return v as { name: string; value: string }[]
  if (isObject(v)) return Object.entries(v).map(([name, value]) => ({ name, value: String(value) }))
  throw new SpecError('env must be a map of NAME: value')
}

/** A secret becomes an environment variable: its name must be one, and its value a scalar. Errors never echo a value. */
function toSecrets(v: unknown): Record<string, string> {
  if (!isObject(v)) throw new SpecError('secrets must be a map of NAME: value (sealed before publishing)')
  return Object.fromEntries(
    Object.entries(v).map(([k, val]) => {
      if (!ENV_NAME.test(k) || k.length > 256) throw new SpecError(`secret name ${JSON.stringify(k)} is not an environment variable name (letters, digits, _; not starting with a digit)`)
      if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') throw new SpecError(`secret ${k} must be a string, not ${val === null ? 'null' : Array.isArray(val) ? 'a list' : typeof val}`)
      return [k, String(val)]
    }),
  )
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

function unknownKeys(o: Record<string, unknown>, allowed: Set<string>, where: string): void {
  const bad = Object.keys(o).filter((k) => !allowed.has(k))
  if (bad.length) throw new SpecError(`unknown field${bad.length > 1 ? 's' : ''} in ${where}: ${bad.join(', ')}`)
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]))
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
