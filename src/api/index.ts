// The farm.meshlet.* XRPC methods, one a file, each a function of the server and the
// app context (the shape of bluesky-social/atproto's packages/pds src/api).
import type { AppContext } from '../context.js'
import type { Server } from '../lexicon/index.js'
import deleteWorkload from './farm/meshlet/deleteWorkload.js'
import drain from './farm/meshlet/drain.js'
import getAuditLog from './farm/meshlet/getAuditLog.js'
import getCapacity from './farm/meshlet/getCapacity.js'
import getWorkloadLogs from './farm/meshlet/getWorkloadLogs.js'
import getWorkloadStatus from './farm/meshlet/getWorkloadStatus.js'
import health from './farm/meshlet/health.js'
import listWorkloads from './farm/meshlet/listWorkloads.js'
import pair from './farm/meshlet/pair.js'
import pauseWorkload from './farm/meshlet/pauseWorkload.js'
import resumeWorkload from './farm/meshlet/resumeWorkload.js'
import undrain from './farm/meshlet/undrain.js'

export default function (server: Server, ctx: AppContext): Server {
  for (const method of [health, getCapacity, listWorkloads, getWorkloadStatus, getWorkloadLogs, deleteWorkload, pauseWorkload, resumeWorkload, drain, undrain, pair, getAuditLog]) {
    method(server, ctx)
  }
  return server
}
