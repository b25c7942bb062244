// An HTTP proxy in front of a real PDS that can be told to fail repo writes, the way a
// hosted PDS fails them: a 500 with an atproto error body, a 429 with RateLimit headers
// (calls go through again once the reset moment passed, like a real rate limiter), or a
// dropped connection. Reads, logins and everything else are always forwarded. Nothing
// here imitates the PDS: what is forwarded is answered by the real one.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export type FailMode = '500' | '429' | 'reset' | 'hold'

export interface ModeOptions {
  /** Fail only write calls that touch one of these collections (default: every write call). */
  collections?: string[]
  /** For 429: seconds from the first refused call to the RateLimit-Reset moment (default 2). */
  resetInSeconds?: number
}

export interface WriteCall {
  /** The XRPC method, e.g. com.atproto.repo.applyWrites. */
  method: string
  collections: string[]
  /** When the call reached the proxy (epoch ms). */
  at: number
  outcome: 'failed' | 'forwarded'
  /** The mode that failed it. */
  mode?: Exclude<FailMode, 'hold'>
  /** The upstream status of a forwarded call. */
  status?: number
}

export interface FlakyProxy {
  url: string
  readonly mode: FailMode | null
  /**
   * Switches how write calls are treated from now on. 'hold' parks them (the caller
   * waits, its write in flight) until the mode changes; parked calls are then treated
   * by the new mode.
   */
  setMode(mode: FailMode | null, opts?: ModeOptions): void
  /** Write calls failed and forwarded so far, and those parked now. */
  readonly counts: { failed: number; forwarded: number; held: number }
  /** Every write call, in arrival order. */
  readonly calls: WriteCall[]
  /** In 429 mode, the RateLimit-Reset sent (epoch seconds), fixed at the first refused call. */
  readonly rateLimitReset: number | undefined
  close(): Promise<void>
}

const WRITE_METHODS = new Set([
  'com.atproto.repo.applyWrites',
  'com.atproto.repo.putRecord',
  'com.atproto.repo.createRecord',
  'com.atproto.repo.deleteRecord',
])

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']

function stripHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers }
  for (const h of HOP_BY_HOP) delete out[h]
  return out
}

function collectionsOf(method: string, body: Buffer): string[] {
  try {
    const json = JSON.parse(body.toString('utf8')) as { collection?: string; writes?: { collection?: string }[] }
    if (method === 'com.atproto.repo.applyWrites') return [...new Set((json.writes ?? []).map((w) => w.collection ?? ''))]
    return json.collection ? [json.collection] : []
  } catch {
    return []
  }
}

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const upstream = new URL(target)
  const agent = new http.Agent({ keepAlive: true })
  let mode: FailMode | null = null
  let opts: ModeOptions = {}
  let rateLimitReset: number | undefined
  const counts = { failed: 0, forwarded: 0, held: 0 }
  const calls: WriteCall[] = []
  let release: () => void = () => {}
  let released = Promise.resolve()

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer, onStatus?: (status: number) => void) => {
    const headers = stripHopByHop(req.headers)
    headers.host = upstream.host
    if (body) {
      headers['content-length'] = String(body.length)
    }
    const up = http.request(
      { protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (upRes) => {
        onStatus?.(upRes.statusCode ?? 0)
        res.writeHead(upRes.statusCode ?? 502, stripHopByHop(upRes.headers))
        upRes.pipe(res)
        upRes.on('error', () => res.destroy())
      },
    )
    up.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: 'UpstreamFailure', message: err.message }))
      } else res.destroy()
    })
    if (body) up.end(body)
    else req.pipe(up)
  }

  const fail = (req: http.IncomingMessage, res: http.ServerResponse, how: Exclude<FailMode, 'hold'>) => {
    if (how === 'reset') {
      req.socket.destroy()
      return
    }
    if (how === '500') {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'InternalServerError', message: 'flaky proxy: injected failure' }))
      return
    }
    res.writeHead(429, {
      'content-type': 'application/json',
      'RateLimit-Limit': '100',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': String(rateLimitReset),
      'RateLimit-Policy': '100;w=3600',
    })
    res.end(JSON.stringify({ error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' }))
  }

  const onWrite = async (req: http.IncomingMessage, res: http.ServerResponse, method: string) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    const collections = collectionsOf(method, body)
    const at = Date.now()
    const matches = () => !opts.collections || collections.length === 0 || collections.some((c) => opts.collections!.includes(c))
    while (mode === 'hold' && matches()) {
      counts.held++
      await released
      counts.held--
    }
    const current = mode
    let how: Exclude<FailMode, 'hold'> | undefined = current && current !== 'hold' && matches() ? current : undefined
    if (how === '429') {
      const now = Date.now()
      rateLimitReset ??= Math.ceil(now / 1000) + (opts.resetInSeconds ?? 2)
      // the window passed: a real limiter lets calls through again
      if (now >= rateLimitReset * 1000) how = undefined
    }
    if (how) {
      counts.failed++
      calls.push({ method, collections, at, outcome: 'failed', mode: how })
      fail(req, res, how)
      return
    }
    counts.forwarded++
    const call: WriteCall = { method, collections, at, outcome: 'forwarded' }
    calls.push(call)
    forward(req, res, body, (status) => (call.status = status))
  }

  const server = http.createServer((req, res) => {
    const method = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/xrpc\//, '')
    if (req.method === 'POST' && WRITE_METHODS.has(method)) {
      onWrite(req, res, method).catch(() => res.destroy())
      return
    }
    forward(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const arm = () => {
    released = new Promise<void>((r) => (release = r))
  }
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode
    },
    setMode(next, o = {}) {
      const wasHolding = mode === 'hold'
      mode = next
      opts = o
      if (next === '429') rateLimitReset = undefined
      if (next === 'hold' && !wasHolding) arm()
      if (wasHolding && next !== 'hold') release()
    },
    counts,
    calls,
    get rateLimitReset() {
      return rateLimitReset
    },
    async close() {
      if (mode === 'hold') release()
      mode = null
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      agent.destroy()
    },
  }
}
