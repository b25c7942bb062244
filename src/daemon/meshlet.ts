// One meshlet daemon: builds the AppContext (src/context.ts) — identity, local db,
// firehose ingestion, cluster formation, the placement engine, the executor, pairing
// codes, the audit log — and runs heartbeats and (optionally) the XRPC service over it.
import path from 'node:path'
import { X25519 } from '../util/x25519.js'
import { ClusterFormation } from '../cluster/formation.js'
import { LocalDb } from '../db/index.js'
import { createIdResolver } from '../identity/resolver.js'
import { allocatable, detectHost } from '../executor/capacity.js'
import { diskReader } from '../executor/disk.js'
import { DaemonMetrics } from './metrics.js'
import { COLLECTIONS, type CapacityRecord, type Resources } from '../records/index.js'
import { RepoReader } from '../repo/reader.js'
import { RepoWriter } from '../repo/writer.js'
import { PublicState } from '../scheduler/state.js'
import { Ingestor } from '../sync/ingest.js'
import { createLogger, type Logger } from '../util/logger.js'
import { nowIso } from '../util/time.js'
import { checkConfig, drainGracePerTier, type MeshletConfig } from './config.js'
import { PlacementEngine } from './engine.js'
import { Outbox } from '../repo/outbox.js'
import { PairingCodes, type IssuedCode } from './pairing.js'
import { AuditLog, auditTo, GrantAuditor } from './audit.js'
import type { AppContext } from '../context.js'
import { verifiedOwner } from '../scheduler/membership.js'
import { Authorizer, AuthVerifier } from '../xrpc/auth.js'
import { DbReplayCache } from '../xrpc/replay.js'
import type { XrpcServer } from '../xrpc/server.js'
import type { IdResolver } from '@atproto/identity'
import { DEFAULT_WRITE_POINTS_PER_HOUR, WriteBudget } from '../repo/budget.js'

export type { AppContext }

export class Meshlet {
  private heartbeat?: NodeJS.Timeout
  private reconciler?: NodeJS.Timeout
  private xrpc?: XrpcServer
  private constructor(
    readonly ctx: AppContext,
    readonly idResolver: IdResolver,
  ) {}

  /** Base URL of this meshlet's XRPC service, when it serves one. */
  get url(): string | undefined {
    return this.xrpc?.url
  }

  get did(): string {
    return this.ctx.did
  }

  get pairing(): PairingCodes {
    return this.ctx.pairing
  }

  /** Whether both halves of the owner link verify, as far as this meshlet has seen. */
  hasVerifiedOwner(): boolean {
    return verifiedOwner(this.ctx.state, this.did) !== undefined
  }

  /** A one-time pairing code, for `meshlet run` when it has no owner yet. */
  issuePairingCode(via: string): IssuedCode {
    const issued = this.ctx.pairing.issue()
    this.ctx.audit({ action: 'pairing.issue', outcome: 'ok', detail: { via, expiresAt: issued.expiresAt } })
    return issued
  }

  /** `now` is the clock of pairing codes and token checks (tests move it). */
  static async start(config: Partial<MeshletConfig>, opts: { logger?: Logger; now?: () => number } = {}): Promise<Meshlet> {
    const cfg = checkConfig(config)
    const logger = opts.logger ?? createLogger('meshlet', cfg.logLevel)
    const idResolver = createIdResolver({ plcUrl: cfg.plcUrl, allowInsecureHttp: cfg.allowInsecureHttp })
    const writer = await RepoWriter.login(cfg.service, cfg.identifier, cfg.password)
    const did = writer.did
    const db = new LocalDb(path.join(cfg.dataDir, 'meshlet.sqlite'))
    const state = new PublicState()
    const reader = new RepoReader(idResolver)
    const encryptionKey = X25519.loadOrCreate(db)
    // which meshlet this data dir belongs to, for `meshlet pair` on the host
    db.set('self.did', did)
    const auditLog = new AuditLog(db, { now: opts.now })
    const audit = auditTo(auditLog, logger)
    // Loaded only when used: a scheduling-only meshlet needs no Docker client.
    const driver = cfg.driver === 'none' ? undefined : await (await import('../executor/index.js')).createDriver(cfg.driver, { meshletDid: did, logger, dataDir: cfg.dataDir })
    const host = await detectHost(cfg.dataDir)
    const total = atLeastOne(allocatable(cfg.resources ?? host.resources, cfg.reserve, []))

    let formation: ClusterFormation | undefined
    let engine: PlacementEngine | undefined
    let grants: GrantAuditor | undefined
    let metrics: DaemonMetrics | undefined
    const ingestor = new Ingestor({
      idResolver,
      db,
      state,
      logger,
      onChange: (c) => {
        formation?.onChange(c)
        engine?.onChange(c)
        grants?.onChange(c)
        metrics?.change(c)
      },
      ignore: (collection, stored) => engine?.isStaleEcho(collection, stored) ?? false,
    })
    const restored = ingestor.restore()
    grants = new GrantAuditor({ meshletDid: did, state, audit })
    formation = new ClusterFormation({ meshletDid: did, reader, state, ingestor, logger, followPdses: !cfg.firehose?.length })
    for (const src of cfg.firehose ?? []) ingestor.addSource(src)
    const outbox: Outbox = new Outbox({
      db,
      writer,
      logger,
      onWritten: (entries) => {
        engine?.written(entries)
        metrics?.written(entries)
      },
    })
    metrics = new DaemonMetrics(did, {
      ownStatuses: function* () {
        for (const s of state.statuses.values()) if (s.did === did) yield s.record
      },
      outboxDepth: () => outbox.pending().length,
      firehoseEvents: () => ingestor.stats.events,
      firehoseSkipped: () => ({ invalid: ingestor.stats.invalid, unproven: ingestor.stats.unproven }),
    })
    const budget = new WriteBudget(cfg.writePointsPerHour ?? DEFAULT_WRITE_POINTS_PER_HOUR)
    writer.onPoints = (points) => budget.spend(points)
    const onlineSince = nowIso()
    let meshlet: Meshlet | undefined
    const ctx = {
      cfg,
      did,
      logger,
      db,
      idResolver,
      state,
      reader,
      writer,
      outbox,
      ingestor,
      formation,
      driver,
      total,
      host,
      draining: false,
      encryptionKey,
      onlineSince,
      authVerifier: new AuthVerifier({ idResolver, meshletDid: did, replay: new DbReplayCache(db, opts.now), now: opts.now }),
      authorizer: new Authorizer(state, did),
      pairing: new PairingCodes(db, opts.now),
      auditLog,
      audit,
      metrics,
      capacityRecord: () => meshlet!.capacityRecord(),
      setDraining: (draining: boolean) => meshlet!.setDraining(draining),
    } as Omit<AppContext, 'engine'> as AppContext
    engine = new PlacementEngine({
      did,
      state,
      outbox,
      logger,
      driver,
      placement: { skewMs: cfg.skewMs },
      drivers: driver ? [driver.name] : ['docker', 'process'],
      isDraining: () => ctx.draining,
      openSecret: (c, binding) => encryptionKey.open(c, binding),
      disk: diskReader(cfg.dataDir, cfg.diskFloorMiB),
      drainGraceSeconds: drainGracePerTier(cfg),
      audit,
      onStarted: (seconds, ok) => metrics?.started(seconds, ok),
      budget,
      allocatable: () => allocatable(ctx.total, undefined, [engine!.held()]),
      onlineSince: () => Date.parse(onlineSince),
    })
    engine.listeners.add((p) => metrics?.placement(p))
    ctx.engine = engine
    meshlet = new Meshlet(ctx, idResolver)
    if (cfg.port !== undefined) {
      const { startXrpc } = await import('../xrpc/server.js')
      meshlet.xrpc = await startXrpc(ctx, cfg.port, cfg.host)
      cfg.publicUrl ??= meshlet.xrpc.url
    }

    const members = await formation.bootstrap()
    await meshlet.loadOwnRecords()
    await meshlet.reconcile()
    // replicas re-asserted by reconcile reach the firehose before the heartbeat that says we restarted
    await Promise.race([outbox.drained(), new Promise((r) => setTimeout(r, 10_000))])
    // a PDS that refuses writes at start costs the heartbeat, not the daemon: retried soon
    await meshlet.publishCapacity().catch((err) => {
      logger.warn({ err: err.message }, 'first heartbeat failed; retrying')
      const retry = setInterval(() => void meshlet.publishCapacity().then(() => clearInterval(retry), () => undefined), 5000)
      retry.unref()
    })
    logger.info({ did, restored, members: members.filter((m) => m.verified).map((m) => m.owner) }, 'meshlet up')
    // only now: before its new heartbeat (onlineSince) is out, it would answer as the meshlet it was before the restart
    engine.start()
    const hb = (cfg.heartbeatSeconds ?? 300) * 1000
    const retentionMs = (cfg.retentionSeconds ?? 86_400) * 1000
    meshlet.heartbeat = setInterval(() => {
      void meshlet.publishCapacity().catch((err) => logger.warn({ err: err.message }, 'heartbeat failed'))
      const retired = engine.retireFinished(retentionMs)
      if (retired) logger.info({ retired }, 'finished workloads left memory')
    }, hb)
    meshlet.heartbeat.unref()
    if (driver) {
      meshlet.reconciler = setInterval(() => void meshlet.reconcile().catch((err) => logger.warn({ err: err.message }, 'reconcile failed')), (cfg.reconcileSeconds ?? 60) * 1000)
      meshlet.reconciler.unref()
    }
    return meshlet
  }

  /**
   * Compares what should run (replicas won and unfinished) with what runs (containers
   * carrying our label): adopts what belongs, removes orphans, starts what is missing,
   * and records outcomes of replicas that finished while nobody watched.
   */
  async reconcile(): Promise<void> {
    const r = await this.ctx.engine.reconcile()
    if (r.adopted || r.removed || r.vanished) this.ctx.logger.info(r, 'reconciled containers')
  }

  /**
   * Our own bids and statuses, straight from our repo (a crash may have lost their
   * echo), then what still waits in the outbox, which is newer.
   */
  private async loadOwnRecords(): Promise<void> {
    for (const collection of [COLLECTIONS.bid, COLLECTIONS.workloadStatus] as const) {
      const { records } = await this.ctx.reader.list(this.did, collection)
      for (const r of records) {
        this.ctx.writer.markExisting(collection, r.rkey)
        this.ctx.ingestor.applyRecord(collection, { uri: r.uri, cid: r.cid, did: this.did, rkey: r.rkey, record: r.record }, true)
      }
    }
    for (const e of this.ctx.outbox.pending()) this.ctx.engine.believe(e.collection, e.rkey, e.record, '')
    void this.ctx.outbox.flush()
  }

  capacityRecord(): CapacityRecord {
    const { ctx } = this
    return {
      $type: COLLECTIONS.capacity,
      total: ctx.total,
      allocatable: atLeastOne(allocatable(ctx.total, undefined, [ctx.engine.held()])),
      drivers: ctx.driver ? [ctx.driver.name] : ['docker', 'process'],
      arch: ctx.host.arch,
      ...(ctx.host.gpus.length && (ctx.total.gpus ?? 0) > 0 ? { gpus: ctx.host.gpus.slice(0, ctx.total.gpus) } : {}),
      ...(ctx.cfg.labels?.length ? { labels: ctx.cfg.labels } : {}),
      ...(ctx.cfg.publicUrl ? { endpoint: ctx.cfg.publicUrl } : {}),
      encryptionKey: ctx.encryptionKey.publicKeyBase64,
      draining: ctx.draining,
      ...(ctx.engine.disk() ? { disk: ctx.engine.disk()! } : {}),
      ...((ctx.draining ? 'draining' : ctx.engine.declining()) ? { declining: ctx.draining ? 'draining' : ctx.engine.declining()! } : {}),
      heartbeatSeconds: ctx.cfg.heartbeatSeconds ?? 300,
      onlineSince: ctx.onlineSince,
      updatedAt: nowIso(),
    }
  }

  /**
   * A heartbeat stamped past an answer's due time says the answer was never given
   * (placement.ts, ANSWER_DEADLINE_MS). So it is believed here the moment it is stamped
   * (this meshlet answers nothing after it), and sent only behind every write queued before
   * that moment (it never overtakes an answer still in the outbox).
   */
  async publishCapacity(): Promise<void> {
    const record = this.capacityRecord()
    const uri = `at://${this.did}/${COLLECTIONS.capacity}/self`
    this.ctx.ingestor.applyRecord(COLLECTIONS.capacity, { uri, cid: '', did: this.did, rkey: 'self', record }, true)
    await this.ctx.outbox.flushThrough(this.ctx.outbox.lastSeq())
    await this.ctx.writer.put(COLLECTIONS.capacity, 'self', record)
  }

  async setDraining(draining: boolean): Promise<void> {
    this.ctx.draining = draining
    await this.publishCapacity()
  }

  async close(opts: { stopReplicas?: boolean } = {}): Promise<void> {
    clearInterval(this.heartbeat)
    clearInterval(this.reconciler)
    await this.xrpc?.close()
    await this.ctx.engine.close()
    // what could not be written stays in the outbox for the next start
    await Promise.race([this.ctx.outbox.drained(), new Promise((r) => setTimeout(r, 5000))])
    await this.ctx.outbox.close()
    await this.ctx.ingestor.close()
    if (opts.stopReplicas && this.ctx.driver) {
      for (const r of await this.ctx.driver.listOwn(this.did)) await this.ctx.driver.stop(r.workloadUri, r.replica)
    }
    await this.ctx.driver?.close()
    this.ctx.db.close()
  }
}

/** The lexicon's resources need cpu and memory ≥ 1: a full meshlet offers the minimum. */
function atLeastOne(r: Resources): Resources {
  return { ...r, cpuMillis: Math.max(1, r.cpuMillis), memoryMiB: Math.max(1, r.memoryMiB) }
}
