/**
 * GENERATED CODE - DO NOT MODIFY
 */
import {
  type Auth,
  type Options as XrpcOptions,
  Server as XrpcServer,
  type StreamConfigOrHandler,
  type MethodConfigOrHandler,
  createServer as createXrpcServer,
} from '@atproto/xrpc-server'
import { schemas } from './lexicons.js'
import * as CommuneAppviewGetLedger from './types/commune/appview/getLedger.js'
import * as CommuneAppviewGetWorkload from './types/commune/appview/getWorkload.js'
import * as CommuneAppviewListMeshlets from './types/commune/appview/listMeshlets.js'
import * as CommuneAppviewListWorkloads from './types/commune/appview/listWorkloads.js'
import * as FarmMeshletDeleteWorkload from './types/farm/meshlet/deleteWorkload.js'
import * as FarmMeshletDrain from './types/farm/meshlet/drain.js'
import * as FarmMeshletGetAuditLog from './types/farm/meshlet/getAuditLog.js'
import * as FarmMeshletGetCapacity from './types/farm/meshlet/getCapacity.js'
import * as FarmMeshletGetWorkloadLogs from './types/farm/meshlet/getWorkloadLogs.js'
import * as FarmMeshletGetWorkloadStatus from './types/farm/meshlet/getWorkloadStatus.js'
import * as FarmMeshletHealth from './types/farm/meshlet/health.js'
import * as FarmMeshletListWorkloads from './types/farm/meshlet/listWorkloads.js'
import * as FarmMeshletPair from './types/farm/meshlet/pair.js'
import * as FarmMeshletPauseWorkload from './types/farm/meshlet/pauseWorkload.js'
import * as FarmMeshletResumeWorkload from './types/farm/meshlet/resumeWorkload.js'
import * as FarmMeshletUndrain from './types/farm/meshlet/undrain.js'

export function createServer(options?: XrpcOptions): Server {
  return new Server(options)
}

export class Server {
  xrpc: XrpcServer
  com: ComNS
  commune: CommuneNS
  farm: FarmNS

  constructor(options?: XrpcOptions) {
    this.xrpc = createXrpcServer(schemas, options)
    this.com = new ComNS(this)
    this.commune = new CommuneNS(this)
    this.farm = new FarmNS(this)
  }
}

export class ComNS {
  _server: Server
  atproto: ComAtprotoNS

  constructor(server: Server) {
    this._server = server
    this.atproto = new ComAtprotoNS(server)
  }
}

export class ComAtprotoNS {
  _server: Server
  repo: ComAtprotoRepoNS

  constructor(server: Server) {
    this._server = server
    this.repo = new ComAtprotoRepoNS(server)
  }
}

export class ComAtprotoRepoNS {
  _server: Server

  constructor(server: Server) {
    this._server = server
  }
}

export class CommuneNS {
  _server: Server
  appview: CommuneAppviewNS
  scheduler: CommuneSchedulerNS

  constructor(server: Server) {
    this._server = server
    this.appview = new CommuneAppviewNS(server)
    this.scheduler = new CommuneSchedulerNS(server)
  }
}

export class CommuneAppviewNS {
  _server: Server

  constructor(server: Server) {
    this._server = server
  }

  getLedger<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      CommuneAppviewGetLedger.QueryParams,
      CommuneAppviewGetLedger.HandlerInput,
      CommuneAppviewGetLedger.HandlerOutput
    >,
  ) {
    const nsid = 'commune.appview.getLedger' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  getWorkload<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      CommuneAppviewGetWorkload.QueryParams,
      CommuneAppviewGetWorkload.HandlerInput,
      CommuneAppviewGetWorkload.HandlerOutput
    >,
  ) {
    const nsid = 'commune.appview.getWorkload' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  listMeshlets<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      CommuneAppviewListMeshlets.QueryParams,
      CommuneAppviewListMeshlets.HandlerInput,
      CommuneAppviewListMeshlets.HandlerOutput
    >,
  ) {
    const nsid = 'commune.appview.listMeshlets' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  listWorkloads<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      CommuneAppviewListWorkloads.QueryParams,
      CommuneAppviewListWorkloads.HandlerInput,
      CommuneAppviewListWorkloads.HandlerOutput
    >,
  ) {
    const nsid = 'commune.appview.listWorkloads' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }
}

export class CommuneSchedulerNS {
  _server: Server

  constructor(server: Server) {
    this._server = server
  }
}

export class FarmNS {
  _server: Server
  meshlet: FarmMeshletNS

  constructor(server: Server) {
    this._server = server
    this.meshlet = new FarmMeshletNS(server)
  }
}

export class FarmMeshletNS {
  _server: Server

  constructor(server: Server) {
    this._server = server
  }

  deleteWorkload<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletDeleteWorkload.QueryParams,
      FarmMeshletDeleteWorkload.HandlerInput,
      FarmMeshletDeleteWorkload.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.deleteWorkload' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  drain<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletDrain.QueryParams,
      FarmMeshletDrain.HandlerInput,
      FarmMeshletDrain.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.drain' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  getAuditLog<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletGetAuditLog.QueryParams,
      FarmMeshletGetAuditLog.HandlerInput,
      FarmMeshletGetAuditLog.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.getAuditLog' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  getCapacity<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletGetCapacity.QueryParams,
      FarmMeshletGetCapacity.HandlerInput,
      FarmMeshletGetCapacity.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.getCapacity' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  getWorkloadLogs<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletGetWorkloadLogs.QueryParams,
      FarmMeshletGetWorkloadLogs.HandlerInput,
      FarmMeshletGetWorkloadLogs.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.getWorkloadLogs' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  getWorkloadStatus<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletGetWorkloadStatus.QueryParams,
      FarmMeshletGetWorkloadStatus.HandlerInput,
      FarmMeshletGetWorkloadStatus.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.getWorkloadStatus' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  health<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletHealth.QueryParams,
      FarmMeshletHealth.HandlerInput,
      FarmMeshletHealth.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.health' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  listWorkloads<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletListWorkloads.QueryParams,
      FarmMeshletListWorkloads.HandlerInput,
      FarmMeshletListWorkloads.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.listWorkloads' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  pair<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletPair.QueryParams,
      FarmMeshletPair.HandlerInput,
      FarmMeshletPair.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.pair' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  pauseWorkload<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletPauseWorkload.QueryParams,
      FarmMeshletPauseWorkload.HandlerInput,
      FarmMeshletPauseWorkload.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.pauseWorkload' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  resumeWorkload<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletResumeWorkload.QueryParams,
      FarmMeshletResumeWorkload.HandlerInput,
      FarmMeshletResumeWorkload.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.resumeWorkload' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }

  undrain<A extends Auth = void>(
    cfg: MethodConfigOrHandler<
      A,
      FarmMeshletUndrain.QueryParams,
      FarmMeshletUndrain.HandlerInput,
      FarmMeshletUndrain.HandlerOutput
    >,
  ) {
    const nsid = 'farm.meshlet.undrain' // @ts-ignore
    return this._server.xrpc.method(nsid, cfg)
  }
}
