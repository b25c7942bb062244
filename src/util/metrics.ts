// Prometheus plumbing that every meshlet process shares (the daemon and the appview
// alike): a registry of its own (never prom-client's global one, so several services in
// one process do not collide), an express handler for /metrics, and a strict parser of
// the text exposition format for tests and health checks.
import type { Request, Response } from 'express'
import { collectDefaultMetrics, Registry } from 'prom-client'

export { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** A registry with this process's default metrics (cpu, memory, event loop) under `prefix`. */
export function newRegistry(opts: { prefix: string; defaultMetrics?: boolean; labels?: Record<string, string> }): Registry {
  const registry = new Registry()
  if (opts.labels) registry.setDefaultLabels(opts.labels)
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: opts.prefix })
  return registry
}

/** GET /metrics: the registry in the text format. A collect callback that throws is a 500 with one line. */
export function metricsHandler(registry: Registry) {
  return async (_req: Request, res: Response) => {
    try {
      const body = await registry.metrics()
      // set as is: express's send() would rewrite the content type prom-client chose
      res.setHeader('content-type', registry.contentType)
      res.end(body)
    } catch (err) {
      res.status(500).type('text/plain').send(`metrics: ${(err as Error).message}\n`)
    }
  }
}

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export class ExpositionError extends Error {}

/**
 * Parses the Prometheus text format (0.0.4) strictly: every sample belongs to a family
 * declared by # HELP and # TYPE before it, names and label names are valid, label values
 * are properly escaped and quoted, values are numbers, a family is not split, and a
 * histogram has increasing cumulative buckets ending at +Inf that equal its _count.
 * Throws ExpositionError naming the line.
 */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>()
  const closed = new Set<string>()
  let current: MetricFamily | undefined
  const lines = text.split('\n')
  if (lines.at(-1) !== '') throw new ExpositionError('the exposition must end with a newline')
  lines.pop()
  lines.forEach((line, i) => {
    const fail = (why: string): never => {
      throw new ExpositionError(`line ${i + 1}: ${why}: ${line}`)
    }
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!m) return // a plain comment
      const [, kind, name, rest] = m
      if (!NAME.test(name)) fail('bad metric name')
      if (current && current.name !== name) closed.add(current.name)
      if (closed.has(name)) fail('family declared twice or split')
      let fam = families.get(name)
      if (!fam) families.set(name, (fam = { name, help: '', type: 'untyped', samples: [] }))
      if (kind === 'HELP') fam.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) fail('bad type')
        if (fam.samples.length) fail('TYPE after samples')
        fam.type = rest as MetricFamily['type']
      }
      current = fam
      return
    }
    const sample = parseSample(line, fail)
    const fam = current
    if (!fam) return fail('sample before any # TYPE')
    const suffixes = fam.type === 'histogram' ? ['_bucket', '_sum', '_count'] : fam.type === 'summary' ? ['', '_sum', '_count'] : fam.type === 'counter' ? ['', '_total'] : ['']
    if (!suffixes.some((s) => sample.name === fam.name + s)) fail(`sample does not belong to family ${fam.name}`)
    fam.samples.push(sample)
  })
  for (const fam of families.values()) {
    if (fam.type === 'histogram') checkHistogram(fam)
    if (fam.type === 'counter' && fam.samples.some((s) => s.value < 0)) throw new ExpositionError(`${fam.name}: a counter is negative`)
  }
  return families
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line)
  if (!m) fail('not a sample')
  const [, name, rawLabels, rawValue] = m!
  const labels: Record<string, string> = {}
  if (rawLabels) {
    let rest = rawLabels.slice(1, -1)
    while (rest.length) {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest)
      if (!lm || !LABEL.test(lm[1])) fail('bad label')
      if (lm![1] in labels) fail('duplicate label')
      labels[lm![1]] = lm![2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c))
      rest = rest.slice(lm![0].length)
    }
  }
  // Prometheus reads values with Go's ParseFloat: NaN in any case (prom-client writes `Nan`)
  const nan = rawValue.toLowerCase() === 'nan'
  const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : nan ? NaN : Number(rawValue)
  if (Number.isNaN(value) && !nan) fail('value is not a number')
  return { name, labels, value }
}

function checkHistogram(fam: MetricFamily): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>()
  for (const s of fam.samples) {
    const { le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    let h = series.get(key)
    if (!h) series.set(key, (h = { buckets: [] }))
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new ExpositionError(`${fam.name}: bucket without le`)
      h.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value])
    } else if (s.name.endsWith('_count')) h.count = s.value
  }
  for (const h of series.values()) {
    const last = h.buckets.at(-1)
    if (!last || last[0] !== Infinity) throw new ExpositionError(`${fam.name}: no +Inf bucket`)
    for (let i = 1; i < h.buckets.length; i++) {
      if (!(h.buckets[i][0] > h.buckets[i - 1][0]) || h.buckets[i][1] < h.buckets[i - 1][1]) throw new ExpositionError(`${fam.name}: buckets not increasing`)
    }
    if (h.count !== last[1]) throw new ExpositionError(`${fam.name}: _count differs from the +Inf bucket`)
  }
}

/** The value of one sample (by family or sample name and labels), or undefined. */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const fam of families.values()) {
    for (const s of fam.samples) {
      if (s.name !== name) continue
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value
    }
  }
  return undefined
}
