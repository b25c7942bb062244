// A binary min-heap of timed events: the discrete-event simulator's clock. Ties are
// broken by insertion order, so a run is deterministic and a repo's records keep their order.
export interface Timed {
  at: number
  seq: number
}

export class EventQueue<T extends Timed> {
  private heap: T[] = []
  private nextSeq = 0

  get size(): number {
    return this.heap.length
  }

  push(event: Omit<T, 'seq'>): void {
    const e = { ...event, seq: this.nextSeq++ } as T
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(h[i], h[parent])) break
      ;[h[i], h[parent]] = [h[parent], h[i]]
      i = parent
    }
  }

  peek(): T | undefined {
    return this.heap[0]
  }

  pop(): T | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let min = i
        if (l < h.length && before(h[l], h[min])) min = l
        if (r < h.length && before(h[r], h[min])) min = r
        if (min === i) break
        ;[h[i], h[min]] = [h[min], h[i]]
        i = min
      }
    }
    return top
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
