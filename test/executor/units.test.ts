import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allocatable } from '../../src/executor/capacity.js'
import { NVIDIA_SMI_FIELDS, parseNvidiaSmiQuery } from '../../src/executor/gpu.js'
import { LogRing } from '../../src/executor/logring.js'

const fixture = (f: string) => fs.readFileSync(path.join(import.meta.dirname, '../fixtures/gpu', f), 'utf8')

describe('GPU detection', () => {
  it('parses the H100 query output', () => {
    const gpus = parseNvidiaSmiQuery(fixture('nvidia-smi-query.csv'))
    expect(gpus).toEqual([{ index: 0, uuid: 'GPU-f5224a49-1dc3-baa3-fdbe-728a18121a93', model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }])
  })
  it('agrees with the human-readable output of the same machine', () => {
    const txt = fixture('nvidia-smi.txt')
    expect(txt).toContain('H100')
    expect(txt).toContain('81559MiB')
    expect(NVIDIA_SMI_FIELDS.slice(0, 4)).toEqual(['index', 'uuid', 'name', 'memory.total'])
  })
  it('returns nothing for empty or garbage output', () => {
    expect(parseNvidiaSmiQuery('')).toEqual([])
    expect(parseNvidiaSmiQuery('No devices were found')).toEqual([])
  })
})

describe('allocatable', () => {
  it('is host minus reserve minus held, never negative', () => {
    const host = { cpuMillis: 8000, memoryMiB: 16384, storageMiB: 1000, gpus: 2 }
    expect(allocatable(host, { cpuMillis: 1000, memoryMiB: 2048 }, [{ cpuMillis: 2500, memoryMiB: 4096, gpus: 1 }])).toEqual({ cpuMillis: 4500, memoryMiB: 10240, storageMiB: 1000, gpus: 1 })
    expect(allocatable(host, undefined, [{ cpuMillis: 9000, memoryMiB: 1 }]).cpuMillis).toBe(0)
  })
})

describe('LogRing', () => {
  it('keeps only the last N bytes and reads on with a cursor', () => {
    const ring = new LogRing(10)
    ring.write('hello ')
    ring.write('world!!')
    expect(ring.end).toBe(13)
    const all = ring.read(0)
    expect(all.truncated).toBe(true)
    expect(all.data).toBe('lo world!!')
    const part = ring.read(5, 3)
    expect(part).toEqual({ data: ' wo', cursor: 8, truncated: false })
    expect(ring.read(part.cursor)).toEqual({ data: 'rld!!', cursor: 13, truncated: false })
    expect(ring.read(13)).toEqual({ data: '', cursor: 13, truncated: false })
  })
  it('never holds more than its capacity, and concatenated reads equal the tail (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.string({ maxLength: 30 }), { maxLength: 30 }), (cap, writes) => {
        const ring = new LogRing(cap)
        for (const w of writes) ring.write(w)
        const bytes = Buffer.from(writes.join(''))
        const tail = bytes.subarray(Math.max(0, bytes.length - cap))
        let cursor = ring.end - Math.min(cap, bytes.length)
        let got = Buffer.alloc(0)
        for (;;) {
          const p = ring.read(cursor, 7)
          if (p.cursor === cursor) break
          got = Buffer.concat([got, Buffer.from(p.data)])
          cursor = p.cursor
        }
        expect(ring.end).toBe(bytes.length)
        // pages never split a character, so the decoded pages rebuild the tail's text
        expect(got.toString()).toBe(tail.toString())
      }),
    )
  })
})
