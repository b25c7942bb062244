// A bounded log: only the last `capacity` bytes survive, addressed by absolute byte
// offsets so a reader can continue where it left off.
import type { LogPage } from './types.js'

export const DEFAULT_LOG_BYTES = 256 * 1024

export class LogRing {
  private chunks: Buffer[] = []
  private size = 0
  /** absolute offset of the first byte still held */
  private start = 0

  constructor(readonly capacity = DEFAULT_LOG_BYTES) {}

  get end(): number {
    return this.start + this.size
  }

  write(data: Buffer | string): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    if (buf.length === 0) return
    this.chunks.push(buf)
    this.size += buf.length
    while (this.size > this.capacity) {
      const over = this.size - this.capacity
      const first = this.chunks[0]
      if (first.length <= over) {
        this.chunks.shift()
        this.size -= first.length
        this.start += first.length
      } else {
        this.chunks[0] = first.subarray(over)
        this.size -= over
        this.start += over
      }
    }
  }

  read(cursor = this.start, limit = this.capacity): LogPage {
    const truncated = cursor < this.start
    const from = Math.max(cursor, this.start)
    if (from >= this.end) return { data: '', cursor: Math.max(from, this.end), truncated }
    const all = Buffer.concat(this.chunks)
    let slice = all.subarray(from - this.start, Math.min(all.length, from - this.start + limit))
    // never split a UTF-8 character across pages
    while (slice.length > 0 && slice.length < all.length - (from - this.start) && (slice[slice.length - 1] & 0xc0) === 0x80) {
      slice = slice.subarray(0, slice.length - 1)
    }
    if (slice.length > 0 && (slice[slice.length - 1] & 0xc0) === 0xc0 && slice.length < all.length - (from - this.start)) {
      slice = slice.subarray(0, slice.length - 1)
    }
    return { data: slice.toString('utf8'), cursor: from + slice.length, truncated }
  }
}
