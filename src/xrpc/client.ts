// Calls a meshlet by DID: its endpoint comes from its public capacity record, the token
// from the caller's own PDS (com.atproto.server.getServiceAuth), the standard way. A
// fresh token for every call: the meshlet accepts each token once, and only short-lived
// ones (the PDS default, 60 s).
import type { AtpAgent } from '@atproto/api'
import { COLLECTIONS } from '../records/index.js'
import type { RepoReader } from '../repo/reader.js'
import type * as GetCapacity from '../lexicon/types/farm/meshlet/getCapacity.js'
import type * as ListWorkloads from '../lexicon/types/farm/meshlet/listWorkloads.js'
import type * as GetWorkloadStatus from '../lexicon/types/farm/meshlet/getWorkloadStatus.js'
import type * as GetWorkloadLogs from '../lexicon/types/farm/meshlet/getWorkloadLogs.js'
import type * as DeleteWorkload from '../lexicon/types/farm/meshlet/deleteWorkload.js'
import type * as Drain from '../lexicon/types/farm/meshlet/drain.js'
import type * as Health from '../lexicon/types/farm/meshlet/health.js'
import type * as Pair from '../lexicon/types/farm/meshlet/pair.js'
import type * as GetAuditLog from '../lexicon/types/farm/meshlet/getAuditLog.js'

export class MeshletCallError extends Error {
  override name = 'MeshletCallError'
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message)
  }
}

interface Methods {
  'farm.meshlet.health': { params: Record<string, never>; input: undefined; output: Health.OutputSchema }
  'farm.meshlet.getCapacity': { params: Record<string, never>; input: undefined; output: GetCapacity.OutputSchema }
  'farm.meshlet.listWorkloads': { params: Partial<ListWorkloads.QueryParams>; input: undefined; output: ListWorkloads.OutputSchema }
  'farm.meshlet.getWorkloadStatus': { params: GetWorkloadStatus.QueryParams; input: undefined; output: GetWorkloadStatus.OutputSchema }
  'farm.meshlet.getWorkloadLogs': { params: Partial<GetWorkloadLogs.QueryParams> & { uri: string }; input: undefined; output: GetWorkloadLogs.OutputSchema }
  'farm.meshlet.deleteWorkload': { params: Record<string, never>; input: DeleteWorkload.InputSchema; output: DeleteWorkload.OutputSchema }
  'farm.meshlet.pauseWorkload': { params: Record<string, never>; input: DeleteWorkload.InputSchema; output: DeleteWorkload.OutputSchema }
  'farm.meshlet.resumeWorkload': { params: Record<string, never>; input: DeleteWorkload.InputSchema; output: DeleteWorkload.OutputSchema }
  'farm.meshlet.drain': { params: Record<string, never>; input: undefined; output: Drain.OutputSchema }
  'farm.meshlet.undrain': { params: Record<string, never>; input: undefined; output: Drain.OutputSchema }
  'farm.meshlet.pair': { params: Record<string, never>; input: Pair.InputSchema; output: Pair.OutputSchema }
  'farm.meshlet.getAuditLog': { params: Partial<GetAuditLog.QueryParams>; input: undefined; output: GetAuditLog.OutputSchema }
}
export type MethodId = keyof Methods

const PROCEDURES = new Set<string>(['farm.meshlet.deleteWorkload', 'farm.meshlet.pauseWorkload', 'farm.meshlet.resumeWorkload', 'farm.meshlet.drain', 'farm.meshlet.undrain', 'farm.meshlet.pair'])

export class MeshletClient {
  constructor(
    /** Logged in as the caller, on the caller's own PDS. */
    private readonly agent: AtpAgent,
    private readonly reader: RepoReader,
  ) {}

  /** The meshlet's XRPC base URL, from its capacity record. */
  async endpointOf(meshletDid: string): Promise<string> {
    const cap = await this.reader.get(meshletDid, COLLECTIONS.capacity, 'self')
    if (!cap.ok) throw new MeshletCallError(0, 'NoEndpoint', `cannot find ${meshletDid}'s endpoint: ${cap.detail}`)
    if (!cap.value.record.endpoint) throw new MeshletCallError(0, 'NoEndpoint', `${meshletDid} publishes no XRPC endpoint`)
    return cap.value.record.endpoint.replace(/\/$/, '')
  }

  /**
   * A meshlet named by DID (its endpoint from its capacity record) or by the base URL of
   * its XRPC service (its DID from its health method: a meshlet that has no owner yet
   * may have no endpoint anyone can find).
   */
  async resolve(didOrUrl: string): Promise<{ did: string; endpoint: string }> {
    if (didOrUrl.startsWith('did:')) return { did: didOrUrl, endpoint: await this.endpointOf(didOrUrl) }
    let url: URL
    try {
      url = new URL(didOrUrl)
    } catch {
      throw new MeshletCallError(0, 'BadTarget', `not a DID or an http(s) URL: ${didOrUrl}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MeshletCallError(0, 'BadTarget', `not a DID or an http(s) URL: ${didOrUrl}`)
    const endpoint = url.toString().replace(/\/$/, '')
    const health = await this.callAt(endpoint, '', 'farm.meshlet.health')
    if (typeof health.did !== 'string' || !health.did.startsWith('did:')) throw new MeshletCallError(0, 'NotAMeshlet', `${endpoint} does not answer as a meshlet`)
    return { did: health.did, endpoint }
  }

  async call<M extends MethodId>(
    meshletDid: string,
    method: M,
    params: Methods[M]['params'] = {} as Methods[M]['params'],
    input?: Methods[M]['input'],
  ): Promise<Methods[M]['output']> {
    return this.callAt(await this.endpointOf(meshletDid), meshletDid, method, params, input)
  }

  /** Calls the meshlet `meshletDid` (the token's audience) at a known endpoint. */
  async callAt<M extends MethodId>(
    endpoint: string,
    meshletDid: string,
    method: M,
    params: Methods[M]['params'] = {} as Methods[M]['params'],
    input?: Methods[M]['input'],
  ): Promise<Methods[M]['output']> {
    const headers: Record<string, string> = {}
    if (method !== 'farm.meshlet.health') {
      const res = await this.agent.com.atproto.server.getServiceAuth({ aud: meshletDid, lxm: method })
      headers.authorization = `Bearer ${res.data.token}`
    }
    const qs = new URLSearchParams(
      Object.entries(params as Record<string, unknown>).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])),
    ).toString()
    const isProcedure = PROCEDURES.has(method)
    if (isProcedure && input !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(`${endpoint}/xrpc/${method}${qs ? `?${qs}` : ''}`, {
        method: isProcedure ? 'POST' : 'GET',
        headers,
        body: isProcedure && input !== undefined ? JSON.stringify(input) : undefined,
      })
    } catch (err) {
      throw new MeshletCallError(0, 'Unreachable', `${endpoint} is unreachable: ${(err as Error).message}`)
    }
    const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string }
    if (!res.ok) throw new MeshletCallError(res.status, body.error ?? 'Error', body.message ?? res.statusText)
    return body as Methods[M]['output']
  }
}
