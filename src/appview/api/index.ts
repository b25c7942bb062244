// The commune.appview.* query methods, one a file, each a function of the server and the
// appview context (the shape of src/api/ for the meshlet's own methods).
import type { Server } from '../../lexicon/index.js'
import type { AppviewContext } from '../context.js'
import getLedger from './getLedger.js'
import getWorkload from './getWorkload.js'
import listMeshlets from './listMeshlets.js'
import listWorkloads from './listWorkloads.js'

export default function (server: Server, ctx: AppviewContext): Server {
  for (const method of [listWorkloads, getWorkload, listMeshlets, getLedger]) method(server, ctx)
  return server
}
