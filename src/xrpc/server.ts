// The farm.meshlet.* XRPC service, from the generated server: parameters and bodies are
// validated against the lexicons by @atproto/xrpc-server before a handler runs.
import express from 'express'
import type { AddressInfo } from 'node:net'
import type http from 'node:http'
import { InvalidRequestError } from '@atproto/xrpc-server'
import { createServer } from '../lexicon/index.js'
import type { ReplicaView } from '../lexicon/types/farm/meshlet/defs.js'
import type { Meshlet } from '../daemon/meshlet.js'
import { ownerOfUri } from '../scheduler/fairshare.js'
import type { Stored } from '../scheduler/state.js'
import type { WorkloadStatusRecord } from '../records/index.js'
import { Authorizer, serviceAuth } from './auth.js'
import type { IdResolver } from '@atproto/identity'

export const VERSION = '0.1.0'

export interface XrpcServer {
  url: string
  close(): Promise<void>
}

export async function startXrpc(meshlet: Meshlet, idResolver: IdResolver, port: number, host = '127.0.0.1'): Promise<XrpcServer> {
  const { ctx } = meshlet
  const server = createServer({ validateResponse: false, payload: { jsonLimit: 64 * 1024 } })
  const authz = new Authorizer(ctx.state, ctx.did)
  const auth = (nsid: string) => serviceAuth(idResolver, ctx.did, nsid)
  const ns = server.farm.meshlet

  const replicasOf = (uri?: string): ReplicaView[] =>
    [...ctx.state.statuses.values()]
      .filter((s) => s.did === ctx.did && (!uri || s.record.workload.uri === uri))
      .sort((a, b) => (b.record.updatedAt > a.record.updatedAt ? 1 : b.record.updatedAt < a.record.updatedAt ? -1 : a.uri < b.uri ? -1 : 1))
      .map(view)
  const view = (s: Stored<WorkloadStatusRecord>): ReplicaView => {
    const r = s.record
    return {
      workload: r.workload.uri,
      replica: r.replica,
      state: r.state,
      owner: ownerOfUri(r.workload.uri),
      image: ctx.state.workloads.get(r.workload.uri)?.record.image,
      exitCode: r.exitCode,
      cpuMillis: r.cpuMillis,
      memoryPeakBytes: r.memoryPeakBytes,
      message: r.message,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      writes: ctx.engine.writesPerWorkload.get(r.workload.uri) ?? 0,
    }
  }
  const requireReplicas = (uri: string) => {
    const replicas = replicasOf(uri)
    if (replicas.length === 0) throw new InvalidRequestError(`this meshlet holds no replica of ${uri}`, 'WorkloadNotFound')
    return replicas
  }
  const json = <T>(body: T) => ({ encoding: 'application/json' as const, body })

  ns.health(async () => json({ did: ctx.did, status: ctx.draining ? 'draining' : 'ok', version: VERSION }))

  ns.getCapacity({
    auth: auth('farm.meshlet.getCapacity'),
    handler: async ({ auth: a }) => {
      authz.requireOwnerOrMember(a.credentials.did)
      const cap = meshlet.capacityRecord()
      return json({
        did: ctx.did,
        owner: ctx.state.meshletOwners.get(ctx.did)?.record.owner,
        total: cap.total,
        allocatable: cap.allocatable,
        gpus: cap.gpus,
        drivers: cap.drivers,
        draining: ctx.draining,
        running: replicasOf().filter((r) => r.state === 'running' || r.state === 'scheduled' || r.state === 'paused').length,
      })
    },
  })

  ns.listWorkloads({
    auth: auth('farm.meshlet.listWorkloads'),
    handler: async ({ auth: a, params }) => {
      authz.requireOwnerOrMember(a.credentials.did)
      const all = replicasOf()
      const start = params.cursor ? Number.parseInt(params.cursor, 10) : 0
      if (!Number.isInteger(start) || start < 0) throw new InvalidRequestError('bad cursor')
      const page = all.slice(start, start + params.limit)
      const next = start + page.length
      return json({ replicas: page, ...(next < all.length ? { cursor: String(next) } : {}) })
    },
  })

  ns.getWorkloadStatus({
    auth: auth('farm.meshlet.getWorkloadStatus'),
    handler: async ({ auth: a, params }) => {
      authz.requireWorkloadAccess(a.credentials.did, params.uri)
      return json({ uri: params.uri, replicas: requireReplicas(params.uri) })
    },
  })

  ns.getWorkloadLogs({
    auth: auth('farm.meshlet.getWorkloadLogs'),
    handler: async ({ auth: a, params }) => {
      authz.requireWorkloadAccess(a.credentials.did, params.uri)
      const replicas = requireReplicas(params.uri)
      if (!replicas.some((r) => r.replica === params.replica)) {
        throw new InvalidRequestError(`no replica ${params.replica} of ${params.uri} here`, 'WorkloadNotFound')
      }
      const cursor = params.cursor === undefined ? 0 : Number.parseInt(params.cursor, 10)
      if (!Number.isInteger(cursor) || cursor < 0) throw new InvalidRequestError('cursor must be a byte offset')
      const out = ctx.driver?.logs(params.uri, params.replica, cursor, params.limit)
      return json({
        uri: params.uri,
        replica: params.replica,
        logs: out?.data ?? '',
        cursor: String(out?.cursor ?? cursor),
        ...(out?.truncated ? { truncated: true } : {}),
      })
    },
  })

  ns.deleteWorkload({
    auth: auth('farm.meshlet.deleteWorkload'),
    handler: async ({ auth: a, input }) => {
      const uri = input.body.uri
      authz.requireWorkloadAccess(a.credentials.did, uri)
      requireReplicas(uri)
      await ctx.engine.stopWorkload(uri, `stopped on this meshlet at the request of ${a.credentials.did}`)
      return json({ uri, replicas: replicasOf(uri) })
    },
  })

  for (const [method, paused] of [['pauseWorkload', true], ['resumeWorkload', false]] as const) {
    ns[method]({
      auth: auth(`farm.meshlet.${method}`),
      handler: async ({ auth: a, input }) => {
        const uri = input.body.uri
        authz.requireWorkloadAccess(a.credentials.did, uri)
        requireReplicas(uri)
        await ctx.engine.setPaused(uri, paused)
        return json({ uri, replicas: replicasOf(uri) })
      },
    })
  }

  for (const [method, draining] of [['drain', true], ['undrain', false]] as const) {
    ns[method]({
      auth: auth(`farm.meshlet.${method}`),
      handler: async ({ auth: a }) => {
        authz.requireMeshletOwner(a.credentials.did)
        await meshlet.setDraining(draining)
        return json({ draining: ctx.draining, running: replicasOf().filter((r) => r.state === 'running').length })
      },
    })
  }

  ns.pair({
    auth: auth('farm.meshlet.pair'),
    handler: async ({ auth: a, input }) => {
      const owner = await meshlet.pair(input.body.otp, a.credentials.did)
      return json({ meshlet: ctx.did, owner })
    },
  })

  const app = express()
  app.use(server.xrpc.router)
  const listener: http.Server = await new Promise((resolve) => {
    const l = app.listen(port, host, () => resolve(l))
  })
  const addr = listener.address() as AddressInfo
  return {
    url: `http://${host === '0.0.0.0' ? 'localhost' : host}:${addr.port}`,
    close: () => new Promise((resolve) => listener.close(() => resolve())),
  }
}
