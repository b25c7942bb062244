// Container lifecycle events from the Docker engine, the neutral observer for every system
// a benchmark compares: a container counts as running at the engine's own `start` event,
// whoever asked for it. Events are kept for a while, so a waiter registered after the
// event still finds it.
import type Docker from 'dockerode'
import { wallMs } from './stats.js'

export type ContainerAction = 'create' | 'start' | 'die' | 'destroy'

export interface ContainerEvent {
  action: ContainerAction
  id: string
  /** The container's labels, image and name, as the engine reports them. */
  attributes: Record<string, string>
  /** When the engine says it happened (epoch ms, from its timeNano). */
  at: number
  /** When this process received it (epoch ms). */
  received: number
}

interface RawEvent {
  Type?: string
  Action?: string
  Actor?: { ID?: string; Attributes?: Record<string, string> }
  timeNano?: number
}

type Match = (attributes: Record<string, string>) => boolean

const KEEP = 2000

export class ContainerEvents {
  private readonly seen: ContainerEvent[] = []
  private readonly waiters = new Set<{ action: ContainerAction; match: Match; resolve: (e: ContainerEvent) => void }>()
  private buffered = ''

  private constructor(private readonly stream: NodeJS.ReadableStream & { destroy?: () => void }) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('error', () => undefined)
  }

  static async open(docker: Docker): Promise<ContainerEvents> {
    const stream = await docker.getEvents({ filters: { type: ['container'], event: ['create', 'start', 'die', 'destroy'] } })
    return new ContainerEvents(stream)
  }

  /** The first event of this kind whose attributes match, already seen or still to come. */
  next(action: ContainerAction, match: Match, timeoutMs: number, what: string): Promise<ContainerEvent> {
    const found = this.seen.find((e) => e.action === action && match(e.attributes))
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const waiter = {
        action,
        match,
        resolve: (e: ContainerEvent) => {
          clearTimeout(timer)
          resolve(e)
        },
      }
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`no container ${action} event for ${what} within ${timeoutMs / 1000}s`))
      }, timeoutMs)
      this.waiters.add(waiter)
    })
  }

  /** The first such event already seen, without waiting. */
  find(action: ContainerAction, match: Match): ContainerEvent | undefined {
    return this.seen.find((e) => e.action === action && match(e.attributes))
  }

  /** Every such event seen so far (within the last few thousand). */
  all(action: ContainerAction, match: Match): ContainerEvent[] {
    return this.seen.filter((e) => e.action === action && match(e.attributes))
  }

  close(): void {
    this.stream.destroy?.()
    this.waiters.clear()
  }

  /** The stream is JSON objects separated by newlines; a chunk may end mid-object. */
  private onData(chunk: Buffer): void {
    const received = wallMs()
    this.buffered += chunk.toString('utf8')
    const lines = this.buffered.split('\n')
    this.buffered = lines.pop() ?? ''
    for (const line of lines) {
      if (!line.trim()) continue
      let raw: RawEvent
      try {
        raw = JSON.parse(line) as RawEvent
      } catch {
        continue
      }
      const action = raw.Action as ContainerAction | undefined
      if (raw.Type !== 'container' || !action || !['create', 'start', 'die', 'destroy'].includes(action)) continue
      const e: ContainerEvent = {
        action,
        id: raw.Actor?.ID ?? '',
        attributes: raw.Actor?.Attributes ?? {},
        at: raw.timeNano ? raw.timeNano / 1e6 : received,
        received,
      }
      this.seen.push(e)
      if (this.seen.length > KEEP) this.seen.splice(0, this.seen.length - KEEP)
      for (const w of this.waiters) {
        if (w.action === e.action && w.match(e.attributes)) {
          this.waiters.delete(w)
          w.resolve(e)
        }
      }
    }
  }
}
