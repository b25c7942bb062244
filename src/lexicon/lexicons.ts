/**
 * GENERATED CODE - DO NOT MODIFY
 */
import {
  type LexiconDoc,
  Lexicons,
  ValidationError,
  type ValidationResult,
} from '@atproto/lexicon'
import { type $Typed, is$typed, maybe$typed } from './util.js'

export const schemaDict = {
  ComAtprotoRepoStrongRef: {
    lexicon: 1,
    id: 'com.atproto.repo.strongRef',
    description:
      'A URI with a content-hash fingerprint. (Vendored from atproto so codegen can resolve references.)',
    defs: {
      main: {
        type: 'object',
        required: ['uri', 'cid'],
        properties: {
          uri: {
            type: 'string',
            format: 'at-uri',
          },
          cid: {
            type: 'string',
            format: 'cid',
          },
        },
      },
    },
  },
  CommuneAppviewDefs: {
    lexicon: 1,
    id: 'commune.appview.defs',
    description:
      "Views returned by a commune appview: what it indexed from the commune's public commune.scheduler.* records, and what the placement function derives from them (docs/appview.md).",
    defs: {
      workloadView: {
        type: 'object',
        description:
          "One workload record, summarised: its replicas' states and its placement.",
        required: [
          'uri',
          'cid',
          'owner',
          'image',
          'replicas',
          'resources',
          'createdAt',
          'state',
          'phase',
          'placed',
          'statuses',
        ],
        properties: {
          uri: {
            type: 'string',
            format: 'at-uri',
          },
          cid: {
            type: 'string',
            format: 'cid',
          },
          owner: {
            type: 'string',
            format: 'did',
            description: 'The repo the workload record lives in.',
          },
          name: {
            type: 'string',
            maxLength: 128,
          },
          image: {
            type: 'string',
            maxLength: 512,
          },
          replicas: {
            type: 'integer',
            minimum: 1,
            maximum: 64,
            description: 'Replicas wanted.',
          },
          resources: {
            type: 'ref',
            ref: 'lex:commune.scheduler.defs#resources',
            description: 'Per replica.',
          },
          tier: {
            type: 'string',
            maxLength: 8,
          },
          createdAt: {
            type: 'string',
            format: 'datetime',
          },
          state: {
            type: 'string',
            maxLength: 32,
            knownValues: [
              'pending',
              'queued',
              'running',
              'succeeded',
              'failed',
              'stopped',
            ],
            description:
              'One word for the whole workload: pending (being placed or about to start), queued (no meshlet with room yet), running (a replica runs), or how it ended once every wanted replica finished (failed also when the queue timeout passed with none running).',
          },
          phase: {
            type: 'string',
            maxLength: 32,
            knownValues: ['placing', 'placed', 'queued', 'failed'],
            description: "The placement's phase (docs/protocol.md).",
          },
          placed: {
            type: 'integer',
            minimum: 0,
            maximum: 64,
            description:
              'Replicas with a meshlet: finished, running and selected.',
          },
          reason: {
            type: 'string',
            maxLength: 2048,
            description: 'For queued or failed: why replicas have no meshlet.',
          },
          queueDeadline: {
            type: 'string',
            format: 'datetime',
            description: 'When replicas still unplaced fail.',
          },
          statuses: {
            type: 'array',
            items: {
              type: 'ref',
              ref: 'lex:commune.appview.defs#replicaView',
            },
            description:
              'Every status record about this version of the workload, by meshlet and replica.',
          },
        },
      },
      replicaView: {
        type: 'object',
        description:
          "One workloadStatus record: a meshlet's report on one replica.",
        required: ['uri', 'meshlet', 'replica', 'state', 'updatedAt'],
        properties: {
          uri: {
            type: 'string',
            format: 'at-uri',
            description: 'The status record.',
          },
          meshlet: {
            type: 'string',
            format: 'did',
          },
          replica: {
            type: 'integer',
            minimum: 0,
            maximum: 63,
          },
          state: {
            type: 'string',
            maxLength: 32,
            knownValues: [
              'scheduled',
              'running',
              'succeeded',
              'failed',
              'stopped',
              'yielded',
              'paused',
            ],
          },
          round: {
            type: 'integer',
            minimum: 0,
          },
          exitCode: {
            type: 'integer',
          },
          cpuMillis: {
            type: 'integer',
            minimum: 0,
          },
          memoryPeakBytes: {
            type: 'integer',
            minimum: 0,
          },
          message: {
            type: 'string',
            maxLength: 1024,
          },
          startedAt: {
            type: 'string',
            format: 'datetime',
          },
          finishedAt: {
            type: 'string',
            format: 'datetime',
          },
          updatedAt: {
            type: 'string',
            format: 'datetime',
          },
        },
      },
      placementView: {
        type: 'object',
        description:
          "The placement of one workload, as every meshlet computes it (src/scheduler/placement.ts place()), at the appview's clock.",
        required: [
          'phase',
          'round',
          'placed',
          'wanted',
          'settled',
          'queueDeadline',
          'waitingFor',
          'selected',
          'whyNot',
          'answers',
          'rejected',
        ],
        properties: {
          phase: {
            type: 'string',
            maxLength: 32,
            knownValues: ['placing', 'placed', 'queued', 'failed'],
          },
          round: {
            type: 'integer',
            minimum: 0,
            description: 'The round being decided.',
          },
          placed: {
            type: 'integer',
            minimum: 0,
          },
          wanted: {
            type: 'integer',
            minimum: 1,
          },
          settled: {
            type: 'boolean',
            description:
              'Every replica is placed, or no answer can change the current round any more.',
          },
          reason: {
            type: 'string',
            maxLength: 2048,
          },
          queueDeadline: {
            type: 'string',
            format: 'datetime',
          },
          waitingFor: {
            type: 'array',
            items: {
              type: 'string',
              format: 'did',
            },
            description:
              'Candidates that should answer the current round and have not.',
          },
          selected: {
            type: 'array',
            items: {
              type: 'ref',
              ref: 'lex:commune.appview.defs#assignmentView',
            },
          },
          whyNot: {
            type: 'array',
            items: {
              type: 'ref',
              ref: 'lex:commune.appview.defs#whyNotView',
            },
            description: 'Every known meshlet that takes no replica, and why.',
          },
          answers: {
            type: 'array',
            items: {
              type: 'ref',
              ref: 'lex:commune.appview.defs#answerView',
            },
            description: 'The answers that count, by round.',
          },
          rejected: {
            type: 'array',
            items: {
              type: 'ref',
              ref: 'lex:commune.appview.defs#rejectedBidView',
            },
          },
        },
      },
      assignmentView: {
        type: 'object',
        required: [
          'meshlet',
          'replicas',
          'finished',
          'round',
          'via',
          'confirmed',
        ],
        properties: {
          meshlet: {
            type: 'string',
            format: 'did',
          },
          replicas: {
            type: 'integer',
            minimum: 0,
            description: 'Replicas it runs or is to run now.',
          },
          finished: {
            type: 'integer',
            minimum: 0,
            description: 'Replicas it finished (never run again).',
          },
          round: {
            type: 'integer',
            minimum: 0,
          },
          via: {
            type: 'string',
            maxLength: 16,
            knownValues: ['held', 'answer', 'finished'],
          },
          confirmed: {
            type: 'boolean',
            description:
              'May run now: no candidate ranked above it in its round is still to answer.',
          },
        },
      },
      whyNotView: {
        type: 'object',
        required: ['meshlet', 'reason'],
        properties: {
          meshlet: {
            type: 'string',
            format: 'did',
          },
          reason: {
            type: 'string',
            maxLength: 512,
            description:
              'not-linked, not-a-member, infeasible:memory, stale-heartbeat, declined:no room, lost:heartbeat-expired, awaiting-answer, not-needed, ... (docs/protocol.md).',
          },
        },
      },
      answerView: {
        type: 'object',
        required: ['uri', 'meshlet', 'round', 'accept', 'slots', 'createdAt'],
        properties: {
          uri: {
            type: 'string',
            format: 'at-uri',
            description: 'The bid record.',
          },
          meshlet: {
            type: 'string',
            format: 'did',
          },
          round: {
            type: 'integer',
            minimum: 0,
          },
          accept: {
            type: 'boolean',
            description: 'An offer (true) or a decline.',
          },
          slots: {
            type: 'integer',
            minimum: 0,
          },
          reason: {
            type: 'string',
            maxLength: 512,
          },
          createdAt: {
            type: 'string',
            format: 'datetime',
          },
        },
      },
      rejectedBidView: {
        type: 'object',
        required: ['uri', 'reason'],
        properties: {
          uri: {
            type: 'string',
            format: 'at-uri',
          },
          reason: {
            type: 'string',
            maxLength: 64,
            knownValues: [
              'wrong-workload-cid',
              'not-a-candidate',
              'after-queue-timeout',
              'superseded',
              'conflicting-answers',
            ],
          },
        },
      },
      timelineEvent: {
        type: 'object',
        description:
          "One step in a workload's life, from signed timestamps: the workload's createdAt, each bid's createdAt, each status's startedAt, finishedAt and (for the states the appview saw on the firehose) updatedAt.",
        required: ['at', 'kind'],
        properties: {
          at: {
            type: 'string',
            format: 'datetime',
          },
          kind: {
            type: 'string',
            maxLength: 32,
            knownValues: [
              'submitted',
              'offered',
              'declined',
              'bid-rejected',
              'placed',
              'queued',
              'scheduled',
              'running',
              'paused',
              'succeeded',
              'failed',
              'stopped',
              'yielded',
            ],
          },
          meshlet: {
            type: 'string',
            format: 'did',
          },
          replica: {
            type: 'integer',
            minimum: 0,
          },
          round: {
            type: 'integer',
            minimum: 0,
          },
          detail: {
            type: 'string',
            maxLength: 2048,
            description:
              "The reason or outcome in words: a decline's reason, an exit code, a status message.",
          },
        },
      },
      meshletView: {
        type: 'object',
        description:
          'One meshlet, from its capacity record (the heartbeat), its link records and the status records it wrote.',
        required: [
          'did',
          'linked',
          'health',
          'heartbeatSeconds',
          'running',
          'paused',
          'draining',
          'drivers',
          'clusters',
        ],
        properties: {
          did: {
            type: 'string',
            format: 'did',
          },
          owner: {
            type: 'string',
            format: 'did',
            description: 'The owner, when the link verifies both ways.',
          },
          linked: {
            type: 'boolean',
          },
          health: {
            type: 'string',
            maxLength: 16,
            knownValues: ['green', 'yellow', 'red', 'unknown'],
            description:
              "From the heartbeat's age: green within one interval, yellow within three, red beyond (each with the protocol's clock-skew allowance); unknown without a capacity record.",
          },
          heartbeatAt: {
            type: 'string',
            format: 'datetime',
            description: "The capacity record's updatedAt.",
          },
          heartbeatAgeSeconds: {
            type: 'integer',
            minimum: 0,
          },
          heartbeatSeconds: {
            type: 'integer',
            minimum: 1,
          },
          onlineSince: {
            type: 'string',
            format: 'datetime',
          },
          total: {
            type: 'ref',
            ref: 'lex:commune.scheduler.defs#resources',
          },
          allocatable: {
            type: 'ref',
            ref: 'lex:commune.scheduler.defs#resources',
          },
          running: {
            type: 'integer',
            minimum: 0,
            description:
              'Replicas it reports running, of workloads that still exist.',
          },
          paused: {
            type: 'integer',
            minimum: 0,
            description: 'Replicas it reports paused.',
          },
          draining: {
            type: 'boolean',
          },
          declining: {
            type: 'string',
            maxLength: 512,
          },
          disk: {
            type: 'ref',
            ref: 'lex:commune.scheduler.capacity#disk',
          },
          arch: {
            type: 'string',
            maxLength: 32,
          },
          drivers: {
            type: 'array',
            items: {
              type: 'string',
              maxLength: 32,
            },
          },
          endpoint: {
            type: 'string',
            format: 'uri',
          },
          clusters: {
            type: 'array',
            items: {
              type: 'string',
              maxLength: 512,
            },
            description: 'Names of its cluster records.',
          },
        },
      },
      ledgerRow: {
        type: 'object',
        description:
          "One owner over one period: what its meshlets served to other owners' workloads and what its workloads used on other owners' meshlets. A finished replica counts in the period its finishedAt falls in; cpu is what fair share counts (src/scheduler/fairshare.ts), memory is the memory the workload requested times the replica's wall time (docs/appview.md).",
        required: [
          'owner',
          'periodStart',
          'periodEnd',
          'servedCpuMillis',
          'usedCpuMillis',
          'balanceCpuMillis',
          'servedMemoryMiBSeconds',
          'usedMemoryMiBSeconds',
          'balanceMemoryMiBSeconds',
          'servedReplicas',
          'usedReplicas',
        ],
        properties: {
          owner: {
            type: 'string',
            format: 'did',
          },
          periodStart: {
            type: 'string',
            format: 'datetime',
          },
          periodEnd: {
            type: 'string',
            format: 'datetime',
            description: 'Exclusive.',
          },
          servedCpuMillis: {
            type: 'integer',
            minimum: 0,
          },
          usedCpuMillis: {
            type: 'integer',
            minimum: 0,
          },
          balanceCpuMillis: {
            type: 'integer',
            description: 'Served minus used.',
          },
          servedMemoryMiBSeconds: {
            type: 'integer',
            minimum: 0,
          },
          usedMemoryMiBSeconds: {
            type: 'integer',
            minimum: 0,
          },
          balanceMemoryMiBSeconds: {
            type: 'integer',
          },
          servedReplicas: {
            type: 'integer',
            minimum: 0,
          },
          usedReplicas: {
            type: 'integer',
            minimum: 0,
          },
        },
      },
    },
  },
  CommuneAppviewGetLedger: {
    lexicon: 1,
    id: 'commune.appview.getLedger',
    defs: {
      main: {
        type: 'query',
        description:
          "The contribution ledger: per owner and period, cpu and memory served to others and used on others' meshlets, from finished status records only (docs/appview.md says how to reproduce it).",
        parameters: {
          type: 'params',
          required: ['from', 'to'],
          properties: {
            from: {
              type: 'string',
              format: 'datetime',
              description: 'Inclusive.',
            },
            to: {
              type: 'string',
              format: 'datetime',
              description: 'Exclusive.',
            },
            period: {
              type: 'string',
              maxLength: 16,
              knownValues: ['total', 'day', 'week', 'month'],
              default: 'total',
              description:
                'One row per owner for the whole range (total), or per UTC day, ISO week (from Monday) or calendar month, clipped to the range.',
            },
            owner: {
              type: 'string',
              format: 'did',
              description: "Only this owner's rows.",
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['from', 'to', 'period', 'rows'],
            properties: {
              from: {
                type: 'string',
                format: 'datetime',
              },
              to: {
                type: 'string',
                format: 'datetime',
              },
              period: {
                type: 'string',
                maxLength: 16,
              },
              rows: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:commune.appview.defs#ledgerRow',
                },
                description:
                  'By period, then owner. Owners with nothing served or used in a period have no row.',
              },
            },
          },
        },
      },
    },
  },
  CommuneAppviewGetWorkload: {
    lexicon: 1,
    id: 'commune.appview.getWorkload',
    defs: {
      main: {
        type: 'query',
        description:
          'One workload: its record, its placement with the reason every other meshlet takes no replica, its status records and its timeline.',
        parameters: {
          type: 'params',
          required: ['uri'],
          properties: {
            uri: {
              type: 'string',
              format: 'at-uri',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['workload', 'record', 'placement', 'timeline'],
            properties: {
              workload: {
                type: 'ref',
                ref: 'lex:commune.appview.defs#workloadView',
              },
              record: {
                type: 'unknown',
                description:
                  'The commune.scheduler.workload record as its owner signed it.',
              },
              placement: {
                type: 'ref',
                ref: 'lex:commune.appview.defs#placementView',
              },
              timeline: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:commune.appview.defs#timelineEvent',
                },
                description: 'Oldest first.',
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description:
              'The appview holds no workload record at that uri (never seen, or deleted).',
          },
        ],
      },
    },
  },
  CommuneAppviewListMeshlets: {
    lexicon: 1,
    id: 'commune.appview.listMeshlets',
    defs: {
      main: {
        type: 'query',
        description:
          "Every meshlet the appview knows (it wrote a capacity or meshletOwner record), by DID, with its health at the appview's clock.",
        parameters: {
          type: 'params',
          properties: {
            owner: {
              type: 'string',
              format: 'did',
              description:
                'Only the meshlets whose link to this owner verifies.',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['meshlets', 'now'],
            properties: {
              meshlets: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:commune.appview.defs#meshletView',
                },
              },
              now: {
                type: 'string',
                format: 'datetime',
                description: 'The clock the health was judged at.',
              },
            },
          },
        },
      },
    },
  },
  CommuneAppviewListWorkloads: {
    lexicon: 1,
    id: 'commune.appview.listWorkloads',
    defs: {
      main: {
        type: 'query',
        description:
          "The commune's workloads, newest first (by createdAt, then uri). Public: everything here is in public records.",
        parameters: {
          type: 'params',
          properties: {
            owner: {
              type: 'string',
              format: 'did',
              description: "Only this owner's workloads.",
            },
            state: {
              type: 'string',
              maxLength: 32,
              knownValues: [
                'pending',
                'queued',
                'running',
                'succeeded',
                'failed',
                'stopped',
              ],
              description: 'Only workloads in this state (workloadView.state).',
            },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 100,
              default: 50,
            },
            cursor: {
              type: 'string',
              maxLength: 1024,
              description: 'From the previous page.',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['workloads'],
            properties: {
              cursor: {
                type: 'string',
              },
              workloads: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:commune.appview.defs#workloadView',
                },
              },
            },
          },
        },
      },
    },
  },
  CommuneSchedulerBid: {
    lexicon: 1,
    id: 'commune.scheduler.bid',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by a meshlet: an offer (or, with decline, a refusal) to run a workload in a given round. Valid only if the strongRef matches the workload's current cid and the meshlet is a candidate; a round-0 answer from a meshlet that came online after the workload was created, or an offer created after the workload's queue timeout, does not count. A meshlet answers once per round; two different answers in one round count as a decline.",
        key: 'tid',
        record: {
          type: 'object',
          required: ['workload', 'round', 'score', 'createdAt'],
          properties: {
            workload: {
              type: 'ref',
              ref: 'lex:com.atproto.repo.strongRef',
            },
            round: {
              type: 'integer',
              minimum: 0,
              maximum: 1000,
              description:
                '0 for the first placement. A later round opens only after the previous one settled short of replicas, by an offer from a meshlet that now has room; it fills only what the earlier rounds could not.',
            },
            score: {
              type: 'integer',
              minimum: 0,
              maximum: 1000000,
              description:
                'Higher wins. Recomputed by every meshlet from public records; this value is informative.',
            },
            slots: {
              type: 'integer',
              minimum: 1,
              maximum: 64,
              description:
                'How many replicas this meshlet can take (only above 1 when the workload allows packing).',
            },
            decline: {
              type: 'boolean',
              description:
                'True: the meshlet is eligible but will not run it (lets the round close early).',
            },
            reason: {
              type: 'string',
              maxLength: 256,
              description: 'Why it declined.',
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerCapacity: {
    lexicon: 1,
    id: 'commune.scheduler.capacity',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by a meshlet at rkey 'self': what it offers. Refreshed as a heartbeat (rarely: every write costs rate-limit points); a meshlet whose heartbeat is older than its stated interval times three is considered lost.",
        key: 'literal:self',
        record: {
          type: 'object',
          required: ['total', 'allocatable', 'drivers', 'arch', 'updatedAt'],
          properties: {
            total: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#resources',
              description: 'Host resources.',
            },
            allocatable: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#resources',
              description:
                'Total minus the configured reserve minus what running replicas hold, at updatedAt.',
            },
            gpus: {
              type: 'array',
              maxLength: 64,
              items: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#gpu',
              },
            },
            drivers: {
              type: 'array',
              maxLength: 8,
              items: {
                type: 'string',
                maxLength: 32,
                knownValues: ['docker', 'process'],
              },
              description: 'Execution drivers available.',
            },
            labels: {
              type: 'array',
              maxLength: 64,
              items: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#label',
              },
            },
            arch: {
              type: 'string',
              maxLength: 32,
              knownValues: ['amd64', 'arm64'],
            },
            endpoint: {
              type: 'string',
              format: 'uri',
              maxLength: 512,
              description:
                "Base URL of the meshlet's farm.meshlet.* XRPC service.",
            },
            encryptionKey: {
              type: 'string',
              maxLength: 128,
              description:
                'base64 X25519 public key to which secrets for this meshlet are sealed.',
            },
            draining: {
              type: 'boolean',
              description: 'True while the meshlet takes no new work.',
            },
            disk: {
              type: 'ref',
              ref: 'lex:commune.scheduler.capacity#disk',
              description: 'The data disk, at updatedAt.',
            },
            declining: {
              type: 'string',
              maxLength: 512,
              description:
                "Why this meshlet takes no new work now (draining, disk floor), if it takes none. Informational: the meshlet's own declines are what count.",
            },
            onlineSince: {
              type: 'string',
              format: 'datetime',
              description:
                "When this meshlet's current run of heartbeats began (its daemon started). A meshlet that came online after a workload was created ranks after those that were there (docs/protocol.md, late joiners).",
            },
            heartbeatSeconds: {
              type: 'integer',
              minimum: 10,
              maximum: 86400,
              description: 'How often this record is refreshed.',
            },
            updatedAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
      disk: {
        type: 'object',
        required: ['totalMiB', 'freeMiB', 'floorMiB'],
        properties: {
          totalMiB: {
            type: 'integer',
            minimum: 0,
          },
          freeMiB: {
            type: 'integer',
            minimum: 0,
          },
          floorMiB: {
            type: 'integer',
            minimum: 0,
            description:
              'New work is declined when free disk would fall under this (default max(20 % of total, 50 GiB)).',
          },
        },
      },
    },
  },
  CommuneSchedulerCluster: {
    lexicon: 1,
    id: 'commune.scheduler.cluster',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by a meshlet, one per cluster it is in; the record key is the cluster name. Lists the owner DIDs this meshlet accepts work from. A member counts only when mutual: that owner's meshlet publishes a cluster record listing this meshlet's owner, and both owner↔meshlet links verify. A meshlet may be in several overlapping clusters.",
        key: 'any',
        record: {
          type: 'object',
          required: ['members', 'createdAt'],
          properties: {
            members: {
              type: 'array',
              maxLength: 512,
              items: {
                type: 'string',
                format: 'did',
              },
              description: 'Member owner DIDs (not meshlet DIDs).',
            },
            description: {
              type: 'string',
              maxLength: 300,
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerDefs: {
    lexicon: 1,
    id: 'commune.scheduler.defs',
    description: 'Shared object types of the commune scheduler records.',
    defs: {
      resources: {
        type: 'object',
        description:
          'An amount of compute. Used both for what a workload replica needs and for what a meshlet offers.',
        required: ['cpuMillis', 'memoryMiB'],
        properties: {
          cpuMillis: {
            type: 'integer',
            minimum: 1,
            maximum: 1024000,
            description: 'CPU in thousandths of a core (1000 = one core).',
          },
          memoryMiB: {
            type: 'integer',
            minimum: 1,
            maximum: 16777216,
            description: 'Memory in MiB.',
          },
          storageMiB: {
            type: 'integer',
            minimum: 0,
            maximum: 1073741824,
            description:
              'Scratch disk in MiB. 0 or absent means none is needed.',
          },
          gpus: {
            type: 'integer',
            minimum: 0,
            maximum: 64,
            description: 'Number of whole GPUs.',
          },
        },
      },
      gpu: {
        type: 'object',
        description: 'One GPU as detected on a meshlet (nvidia-smi).',
        required: ['index', 'model', 'memoryMiB'],
        properties: {
          index: {
            type: 'integer',
            minimum: 0,
            maximum: 255,
          },
          model: {
            type: 'string',
            maxLength: 128,
            description: "Product name, e.g. 'NVIDIA H100 80GB HBM3'.",
          },
          memoryMiB: {
            type: 'integer',
            minimum: 0,
            maximum: 16777216,
          },
          uuid: {
            type: 'string',
            maxLength: 128,
          },
        },
      },
      label: {
        type: 'object',
        description:
          'A key/value label on a meshlet, matched by workload constraints.',
        required: ['key', 'value'],
        properties: {
          key: {
            type: 'string',
            maxLength: 63,
            minLength: 1,
          },
          value: {
            type: 'string',
            maxLength: 253,
          },
        },
      },
      envVar: {
        type: 'object',
        description:
          "A plain (public) environment variable for a workload's container. Never put secrets here: use sealedSecret.",
        required: ['name', 'value'],
        properties: {
          name: {
            type: 'string',
            minLength: 1,
            maxLength: 256,
          },
          value: {
            type: 'string',
            maxLength: 8192,
          },
        },
      },
      sealedSecret: {
        type: 'object',
        description:
          "An environment variable sealed to one meshlet's published encryption key (capacity.encryptionKey). Only that meshlet can open it.",
        required: ['name', 'meshlet', 'ciphertext'],
        properties: {
          name: {
            type: 'string',
            minLength: 1,
            maxLength: 256,
          },
          meshlet: {
            type: 'string',
            format: 'did',
            description: 'The meshlet whose key sealed this value.',
          },
          ciphertext: {
            type: 'string',
            maxLength: 16384,
            description:
              'base64: ephemeral X25519 public key (32 bytes) || nonce (12) || AES-256-GCM ciphertext+tag.',
          },
        },
      },
      constraints: {
        type: 'object',
        description: 'Where a workload may run. Every given field must match.',
        properties: {
          arch: {
            type: 'array',
            maxLength: 8,
            items: {
              type: 'string',
              maxLength: 32,
              knownValues: ['amd64', 'arm64'],
            },
            description: 'Acceptable CPU architectures; empty means any.',
          },
          labels: {
            type: 'array',
            maxLength: 32,
            items: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#label',
            },
            description: 'Labels the meshlet must carry (exact key and value).',
          },
          meshlets: {
            type: 'array',
            maxLength: 256,
            items: {
              type: 'string',
              format: 'did',
            },
            description: 'If set, only these meshlets may run it.',
          },
          gpuModel: {
            type: 'string',
            maxLength: 128,
            description:
              "Substring the GPU model name must contain, e.g. 'H100'.",
          },
        },
      },
    },
  },
  CommuneSchedulerMeshlet: {
    lexicon: 1,
    id: 'commune.scheduler.meshlet',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by an owner: 'this meshlet is mine'. One half of the two-way owner↔meshlet link; the other half is commune.scheduler.meshletOwner in the meshlet's repo. The record key is the meshlet DID when it is a valid record key, else a tid.",
        key: 'any',
        record: {
          type: 'object',
          required: ['meshlet', 'createdAt'],
          properties: {
            meshlet: {
              type: 'string',
              format: 'did',
              description: "The meshlet's DID.",
            },
            name: {
              type: 'string',
              maxLength: 64,
              description: 'A human name for the machine.',
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerMeshletOwner: {
    lexicon: 1,
    id: 'commune.scheduler.meshletOwner',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by a meshlet: 'my owner is X'. Lives at rkey 'self'. Trusted only together with the owner's commune.scheduler.meshlet record naming this meshlet.",
        key: 'literal:self',
        record: {
          type: 'object',
          required: ['owner', 'createdAt'],
          properties: {
            owner: {
              type: 'string',
              format: 'did',
              description: "The owner's DID.",
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerShareDenial: {
    lexicon: 1,
    id: 'commune.scheduler.shareDenial',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by an owner: declines a recipient's shareRequest. (An approval is a shareGrant whose request field references the request.)",
        key: 'tid',
        record: {
          type: 'object',
          required: ['request', 'recipient', 'createdAt'],
          properties: {
            request: {
              type: 'ref',
              ref: 'lex:com.atproto.repo.strongRef',
              description: 'The shareRequest declined.',
            },
            recipient: {
              type: 'string',
              format: 'did',
            },
            reason: {
              type: 'string',
              maxLength: 1000,
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerShareGrant: {
    lexicon: 1,
    id: 'commune.scheduler.shareGrant',
    defs: {
      main: {
        type: 'record',
        description:
          "Written by an owner: lends one of their meshlets to a recipient, who may then place workloads on it without cluster membership, within these limits. Unused for 30 days (no replica of the recipient's ran on the meshlet), a grant lapses.",
        key: 'tid',
        record: {
          type: 'object',
          required: ['meshlet', 'recipient', 'tier', 'createdAt'],
          properties: {
            meshlet: {
              type: 'string',
              format: 'did',
            },
            recipient: {
              type: 'string',
              format: 'did',
              description: "The recipient's owner DID.",
            },
            tier: {
              type: 'string',
              maxLength: 8,
              knownValues: ['a', 'b', 'c'],
              description:
                "Highest trust tier the recipient's workloads may run at on this meshlet (a < b < c).",
            },
            allowedImages: {
              type: 'array',
              maxLength: 64,
              items: {
                type: 'string',
                maxLength: 512,
              },
              description:
                'Images allowed; empty means any. An entry with a digest (repo@sha256:...) or a tag (repo:tag) matches that exact reference; a bare repository (busybox, docker.io/library/busybox) matches any tag or digest of exactly that repository, never a longer name.',
            },
            capabilities: {
              type: 'array',
              maxLength: 32,
              items: {
                type: 'string',
                maxLength: 64,
                knownValues: ['cpu', 'gpu', 'storage', 'network'],
              },
            },
            maxConcurrentJobs: {
              type: 'integer',
              minimum: 1,
              maximum: 1024,
              description:
                'Replicas of the recipient this meshlet runs at once under this grant. Default 1; a further offer waits (declined with the reason) until one finishes.',
            },
            caps: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#resources',
              description:
                'Most one job (replica) of the recipient may ask for: cpu, memory, storage, gpus. A workload asking for more is not placed here.',
            },
            maxJobSeconds: {
              type: 'integer',
              minimum: 1,
              maximum: 2592000,
              description:
                "Wall-time cap per job: a replica running longer is killed (the workload's own timeoutSeconds applies if shorter).",
            },
            minFreeDiskMiB: {
              type: 'integer',
              minimum: 0,
              description: "Disk floor protecting the lender's machine.",
            },
            expiresAt: {
              type: 'string',
              format: 'datetime',
            },
            paused: {
              type: 'boolean',
              description:
                'While true, no new work is placed under this grant; running work continues.',
            },
            onRevoke: {
              type: 'string',
              maxLength: 16,
              knownValues: ['drain', 'kill'],
              description:
                'What happens to running replicas on revoke. Default drain.',
            },
            drainGraceSeconds: {
              type: 'integer',
              minimum: 0,
              maximum: 86400,
              description:
                'On a drain revoke, how long running replicas may still finish. Default 60 for tier a, 300 for tiers b and c.',
            },
            revokedAt: {
              type: 'string',
              format: 'datetime',
              description:
                'Set by the owner to revoke: no new work from then; running replicas drain (onRevoke drain, the default) or stop at once (kill), each ending stopped with the reason. A deleted grant is revoked with kill.',
            },
            request: {
              type: 'ref',
              ref: 'lex:com.atproto.repo.strongRef',
              description: 'The shareRequest this answers, if any.',
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerShareRequest: {
    lexicon: 1,
    id: 'commune.scheduler.shareRequest',
    defs: {
      main: {
        type: 'record',
        description:
          'Written by a recipient: asks an owner to lend a meshlet. The owner answers by writing a shareGrant that references it.',
        key: 'tid',
        record: {
          type: 'object',
          required: ['owner', 'createdAt'],
          properties: {
            owner: {
              type: 'string',
              format: 'did',
            },
            meshlet: {
              type: 'string',
              format: 'did',
              description:
                'A specific meshlet, if the recipient has one in mind.',
            },
            tier: {
              type: 'string',
              maxLength: 8,
              knownValues: ['a', 'b', 'c'],
            },
            message: {
              type: 'string',
              maxLength: 1000,
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerWorkload: {
    lexicon: 1,
    id: 'commune.scheduler.workload',
    defs: {
      main: {
        type: 'record',
        description:
          'Written by an owner: a container to run. Every eligible, feasible meshlet bids; every meshlet computes the same placement from the valid bids. Deleting this record stops it everywhere.',
        key: 'tid',
        record: {
          type: 'object',
          required: ['image', 'resources', 'replicas', 'createdAt'],
          properties: {
            name: {
              type: 'string',
              maxLength: 128,
              description: 'A human name.',
            },
            image: {
              type: 'string',
              minLength: 1,
              maxLength: 512,
              description:
                'Container image reference; pin by digest (name@sha256:...) where possible. For the process driver, ignored.',
            },
            command: {
              type: 'array',
              maxLength: 256,
              items: {
                type: 'string',
                maxLength: 4096,
              },
              description:
                "Command and arguments; empty means the image's default.",
            },
            env: {
              type: 'array',
              maxLength: 128,
              items: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#envVar',
              },
            },
            secrets: {
              type: 'array',
              maxLength: 512,
              items: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#sealedSecret',
              },
            },
            resources: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#resources',
              description: 'Per replica.',
            },
            replicas: {
              type: 'integer',
              minimum: 1,
              maximum: 64,
            },
            constraints: {
              type: 'ref',
              ref: 'lex:commune.scheduler.defs#constraints',
            },
            driver: {
              type: 'string',
              maxLength: 32,
              knownValues: ['docker', 'process'],
              description: 'Required driver; default docker.',
            },
            allowPacking: {
              type: 'boolean',
              description:
                'May several replicas run on one meshlet? Default false.',
            },
            bidWindowMs: {
              type: 'integer',
              minimum: 100,
              maximum: 600000,
              description:
                'Deprecated and ignored since rounds close on answers, not on time (docs/protocol.md). Kept so older records stay valid.',
            },
            queueTimeoutSeconds: {
              type: 'integer',
              minimum: 10,
              maximum: 2592000,
              description:
                'How long replicas that could not be placed stay queued (from createdAt) before the placement ends them as failed. Default 3600.',
            },
            answerDeadlineSeconds: {
              type: 'integer',
              minimum: 5,
              maximum: 3600,
              description:
                'How long each candidate of a placement round has to answer, counted down the ranking: one that heartbeats past its due time without answering is passed over. Default 120 (docs/protocol.md).',
            },
            timeoutSeconds: {
              type: 'integer',
              minimum: 1,
              maximum: 2592000,
              description: 'Kill a replica that runs longer than this.',
            },
            tier: {
              type: 'string',
              maxLength: 8,
              knownValues: ['a', 'b', 'c'],
              description:
                "Trust tier. a: run only, no network, read-only root (default). b: scoped writes, bridge network. c: full host access (only for a meshlet's own owner).",
            },
            createdAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  CommuneSchedulerWorkloadStatus: {
    lexicon: 1,
    id: 'commune.scheduler.workloadStatus',
    defs: {
      main: {
        type: 'record',
        description:
          'Written by a meshlet about a replica it was selected for. The record key is derived from the workload and replica, so a meshlet has at most one per replica and rewrites it as the state changes. Completed records are the public raw material of fair share (cpu-seconds served).',
        key: 'any',
        record: {
          type: 'object',
          required: ['workload', 'replica', 'state', 'updatedAt'],
          properties: {
            workload: {
              type: 'ref',
              ref: 'lex:com.atproto.repo.strongRef',
            },
            replica: {
              type: 'integer',
              minimum: 0,
              maximum: 63,
              description:
                'Index of this replica among those this meshlet runs for the workload (0 unless the workload allows packing).',
            },
            round: {
              type: 'integer',
              minimum: 0,
              maximum: 1000,
            },
            state: {
              type: 'string',
              maxLength: 32,
              knownValues: [
                'scheduled',
                'running',
                'succeeded',
                'failed',
                'stopped',
                'yielded',
                'paused',
              ],
            },
            placed: {
              type: 'integer',
              minimum: 0,
              maximum: 64,
              description:
                "Present only when the placement could not place every replica: how many it placed (below the workload's replicas).",
            },
            exitCode: {
              type: 'integer',
              minimum: -1,
              maximum: 255,
            },
            cpuMillis: {
              type: 'integer',
              minimum: 0,
              description: 'CPU time used, in milliseconds of one core.',
            },
            memoryPeakBytes: {
              type: 'integer',
              minimum: 0,
            },
            message: {
              type: 'string',
              maxLength: 1024,
              description:
                'Why it is in this state (e.g. the reason of a failure).',
            },
            startedAt: {
              type: 'string',
              format: 'datetime',
            },
            finishedAt: {
              type: 'string',
              format: 'datetime',
            },
            updatedAt: {
              type: 'string',
              format: 'datetime',
            },
          },
        },
      },
    },
  },
  FarmMeshletDefs: {
    lexicon: 1,
    id: 'farm.meshlet.defs',
    description: "Views returned by a meshlet's XRPC methods.",
    defs: {
      replicaView: {
        type: 'object',
        description: 'One replica of a workload on this meshlet.',
        required: ['workload', 'replica', 'state'],
        properties: {
          workload: {
            type: 'string',
            format: 'at-uri',
          },
          replica: {
            type: 'integer',
            minimum: 0,
          },
          state: {
            type: 'string',
            knownValues: [
              'scheduled',
              'running',
              'succeeded',
              'failed',
              'stopped',
              'yielded',
              'paused',
            ],
          },
          owner: {
            type: 'string',
            format: 'did',
            description: "The workload's owner.",
          },
          image: {
            type: 'string',
          },
          exitCode: {
            type: 'integer',
          },
          cpuMillis: {
            type: 'integer',
            minimum: 0,
          },
          memoryPeakBytes: {
            type: 'integer',
            minimum: 0,
          },
          message: {
            type: 'string',
          },
          startedAt: {
            type: 'string',
            format: 'datetime',
          },
          finishedAt: {
            type: 'string',
            format: 'datetime',
          },
          writes: {
            type: 'integer',
            minimum: 0,
            description:
              "Repo writes (bids and statuses) this meshlet has made for this workload since it started: the placement's cost here.",
          },
        },
      },
    },
  },
  FarmMeshletDeleteWorkload: {
    lexicon: 1,
    id: 'farm.meshlet.deleteWorkload',
    defs: {
      main: {
        type: 'procedure',
        description:
          "Stop and remove this meshlet's replicas of a workload now and mark them stopped. The workload record stays in its owner's repo; only the owner deleting that record stops it everywhere. Allowed: the meshlet's owner and the workload's owner.",
        input: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri', 'replicas'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
              replicas: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.defs#replicaView',
                },
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description: 'This meshlet holds no replica of that workload.',
          },
        ],
      },
    },
  },
  FarmMeshletDrain: {
    lexicon: 1,
    id: 'farm.meshlet.drain',
    defs: {
      main: {
        type: 'procedure',
        description:
          "Stop bidding for new work; running replicas finish. Allowed: the meshlet's owner.",
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['draining', 'running'],
            properties: {
              draining: {
                type: 'boolean',
              },
              running: {
                type: 'integer',
                minimum: 0,
              },
            },
          },
        },
      },
    },
  },
  FarmMeshletGetAuditLog: {
    lexicon: 1,
    id: 'farm.meshlet.getAuditLog',
    defs: {
      main: {
        type: 'query',
        description:
          "This meshlet's local audit log, newest first: every XRPC call but health (method, caller, outcome), pairing attempts, the share-grant changes it saw for itself, and the replicas it stopped on a grant's revoke or kill. Allowed: this meshlet's owner only.",
        parameters: {
          type: 'params',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 100,
              default: 50,
            },
            cursor: {
              type: 'string',
              maxLength: 32,
              description: 'From the previous page: entries older than it.',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['entries'],
            properties: {
              cursor: {
                type: 'string',
              },
              entries: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.getAuditLog#entry',
                },
              },
            },
          },
        },
      },
      entry: {
        type: 'object',
        description: 'One control action.',
        required: ['id', 'at', 'action', 'outcome'],
        properties: {
          id: {
            type: 'integer',
            minimum: 1,
            description: 'Increasing with time.',
          },
          at: {
            type: 'string',
            format: 'datetime',
          },
          action: {
            type: 'string',
            maxLength: 128,
            description:
              'An XRPC method NSID (farm.meshlet.drain, ...), pairing.issue, pairing.redeem, grant.created|updated|paused|resumed|revoked|deleted, or what the engine reports (revoke and kill stops).',
          },
          actor: {
            type: 'string',
            format: 'did',
            description:
              "Who did it, when known: the verified caller, the grant's author.",
          },
          target: {
            type: 'string',
            maxLength: 8192,
            description:
              "What it was done to: a workload URI, a grant's recipient.",
          },
          outcome: {
            type: 'string',
            maxLength: 64,
            knownValues: ['ok', 'refused', 'error', 'paired', 'seen'],
            description:
              'For calls: ok, refused (4xx, status in detail) or error (5xx); for the rest, how it ended.',
          },
          detail: {
            type: 'unknown',
            description:
              "More about it: status and error name of a call, a grant's uri and what changed, ...",
          },
        },
      },
    },
  },
  FarmMeshletGetCapacity: {
    lexicon: 1,
    id: 'farm.meshlet.getCapacity',
    defs: {
      main: {
        type: 'query',
        description:
          'What this meshlet offers now. Allowed: its owner and mutually verified cluster members.',
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: [
              'did',
              'total',
              'allocatable',
              'drivers',
              'draining',
              'running',
            ],
            properties: {
              did: {
                type: 'string',
                format: 'did',
              },
              owner: {
                type: 'string',
                format: 'did',
              },
              total: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#resources',
              },
              allocatable: {
                type: 'ref',
                ref: 'lex:commune.scheduler.defs#resources',
              },
              gpus: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:commune.scheduler.defs#gpu',
                },
              },
              drivers: {
                type: 'array',
                items: {
                  type: 'string',
                },
              },
              draining: {
                type: 'boolean',
              },
              running: {
                type: 'integer',
                minimum: 0,
                description: 'Replicas running now.',
              },
            },
          },
        },
      },
    },
  },
  FarmMeshletGetWorkloadLogs: {
    lexicon: 1,
    id: 'farm.meshlet.getWorkloadLogs',
    defs: {
      main: {
        type: 'query',
        description:
          "Output of one replica from the bounded ring this meshlet keeps (only the most recent bytes survive). Allowed: the meshlet's owner and the workload's owner.",
        parameters: {
          type: 'params',
          required: ['uri'],
          properties: {
            uri: {
              type: 'string',
              format: 'at-uri',
            },
            replica: {
              type: 'integer',
              minimum: 0,
              maximum: 63,
              default: 0,
            },
            cursor: {
              type: 'string',
              maxLength: 32,
              description:
                'Byte offset returned by an earlier call; continue from there.',
            },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 1048576,
              default: 65536,
              description: 'Most bytes to return.',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri', 'replica', 'logs', 'cursor'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
              replica: {
                type: 'integer',
              },
              logs: {
                type: 'string',
                description: 'UTF-8 output, stdout and stderr interleaved.',
              },
              cursor: {
                type: 'string',
                description: 'Pass back to read what follows.',
              },
              truncated: {
                type: 'boolean',
                description:
                  'True when output before the requested cursor was already dropped from the ring.',
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description: 'This meshlet holds no replica of that workload.',
          },
        ],
      },
    },
  },
  FarmMeshletGetWorkloadStatus: {
    lexicon: 1,
    id: 'farm.meshlet.getWorkloadStatus',
    defs: {
      main: {
        type: 'query',
        description:
          "This meshlet's replicas of one workload. Allowed: the meshlet's owner and the workload's owner.",
        parameters: {
          type: 'params',
          required: ['uri'],
          properties: {
            uri: {
              type: 'string',
              format: 'at-uri',
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri', 'replicas'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
              replicas: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.defs#replicaView',
                },
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description: 'This meshlet holds no replica of that workload.',
          },
        ],
      },
    },
  },
  FarmMeshletHealth: {
    lexicon: 1,
    id: 'farm.meshlet.health',
    defs: {
      main: {
        type: 'query',
        description: 'Public liveness check; needs no auth.',
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['did', 'status'],
            properties: {
              did: {
                type: 'string',
                format: 'did',
              },
              status: {
                type: 'string',
                knownValues: ['ok', 'draining'],
              },
              version: {
                type: 'string',
              },
            },
          },
        },
      },
    },
  },
  FarmMeshletListWorkloads: {
    lexicon: 1,
    id: 'farm.meshlet.listWorkloads',
    defs: {
      main: {
        type: 'query',
        description:
          'Replicas this meshlet holds, newest first. Allowed: its owner and mutually verified cluster members.',
        parameters: {
          type: 'params',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 100,
              default: 50,
            },
            cursor: {
              type: 'string',
              maxLength: 1024,
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['replicas'],
            properties: {
              cursor: {
                type: 'string',
              },
              replicas: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.defs#replicaView',
                },
              },
            },
          },
        },
      },
    },
  },
  FarmMeshletPair: {
    lexicon: 1,
    id: 'farm.meshlet.pair',
    defs: {
      main: {
        type: 'procedure',
        description:
          "Pair this meshlet with the caller using a one-time code issued on the meshlet's host (`meshlet pair`, or printed by `meshlet run` while it has no owner): 8 digits, valid 10 minutes, used once, void after 5 wrong attempts (a wrong try counts against every live code). The link names the caller (the service-auth token's issuer), never anyone the body names. On success the meshlet writes its meshletOwner record naming the caller, who then writes commune.scheduler.meshlet. A meshlet whose meshletOwner record names someone else refuses.",
        input: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['otp'],
            properties: {
              otp: {
                type: 'string',
                minLength: 8,
                maxLength: 8,
              },
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['meshlet', 'owner'],
            properties: {
              meshlet: {
                type: 'string',
                format: 'did',
              },
              owner: {
                type: 'string',
                format: 'did',
              },
            },
          },
        },
        errors: [
          {
            name: 'InvalidOtp',
            description: 'The code matches no code this meshlet issued.',
          },
          {
            name: 'ExpiredOtp',
            description: 'The code was valid 10 minutes and that has passed.',
          },
          {
            name: 'UsedOtp',
            description: 'The code was already used.',
          },
          {
            name: 'VoidOtp',
            description: 'The code is void after 5 wrong attempts.',
          },
          {
            name: 'AlreadyPaired',
            description: 'This meshlet already names another owner.',
          },
        ],
      },
    },
  },
  FarmMeshletPauseWorkload: {
    lexicon: 1,
    id: 'farm.meshlet.pauseWorkload',
    defs: {
      main: {
        type: 'procedure',
        description:
          "Freeze this meshlet's running replicas of a workload. Allowed: the meshlet's owner and the workload's owner.",
        input: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri', 'replicas'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
              replicas: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.defs#replicaView',
                },
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description: 'This meshlet holds no replica of that workload.',
          },
        ],
      },
    },
  },
  FarmMeshletResumeWorkload: {
    lexicon: 1,
    id: 'farm.meshlet.resumeWorkload',
    defs: {
      main: {
        type: 'procedure',
        description:
          "Unfreeze replicas frozen by pauseWorkload. Allowed: the meshlet's owner and the workload's owner.",
        input: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
            },
          },
        },
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['uri', 'replicas'],
            properties: {
              uri: {
                type: 'string',
                format: 'at-uri',
              },
              replicas: {
                type: 'array',
                items: {
                  type: 'ref',
                  ref: 'lex:farm.meshlet.defs#replicaView',
                },
              },
            },
          },
        },
        errors: [
          {
            name: 'WorkloadNotFound',
            description: 'This meshlet holds no replica of that workload.',
          },
        ],
      },
    },
  },
  FarmMeshletUndrain: {
    lexicon: 1,
    id: 'farm.meshlet.undrain',
    defs: {
      main: {
        type: 'procedure',
        description: "Bid for new work again. Allowed: the meshlet's owner.",
        output: {
          encoding: 'application/json',
          schema: {
            type: 'object',
            required: ['draining', 'running'],
            properties: {
              draining: {
                type: 'boolean',
              },
              running: {
                type: 'integer',
                minimum: 0,
              },
            },
          },
        },
      },
    },
  },
} as const satisfies Record<string, LexiconDoc>
export const schemas = Object.values(schemaDict) satisfies LexiconDoc[]
export const lexicons: Lexicons = new Lexicons(schemas)

export function validate<T extends { $type: string }>(
  v: unknown,
  id: string,
  hash: string,
  requiredType: true,
): ValidationResult<T>
export function validate<T extends { $type?: string }>(
  v: unknown,
  id: string,
  hash: string,
  requiredType?: false,
): ValidationResult<T>
export function validate(
  v: unknown,
  id: string,
  hash: string,
  requiredType?: boolean,
): ValidationResult {
  return (requiredType ? is$typed : maybe$typed)(v, id, hash)
    ? lexicons.validate(`${id}#${hash}`, v)
    : {
        success: false,
        error: new ValidationError(
          `Must be an object with "${hash === 'main' ? id : `${id}#${hash}`}" $type property`,
        ),
      }
}

export const ids = {
  ComAtprotoRepoStrongRef: 'com.atproto.repo.strongRef',
  CommuneAppviewDefs: 'commune.appview.defs',
  CommuneAppviewGetLedger: 'commune.appview.getLedger',
  CommuneAppviewGetWorkload: 'commune.appview.getWorkload',
  CommuneAppviewListMeshlets: 'commune.appview.listMeshlets',
  CommuneAppviewListWorkloads: 'commune.appview.listWorkloads',
  CommuneSchedulerBid: 'commune.scheduler.bid',
  CommuneSchedulerCapacity: 'commune.scheduler.capacity',
  CommuneSchedulerCluster: 'commune.scheduler.cluster',
  CommuneSchedulerDefs: 'commune.scheduler.defs',
  CommuneSchedulerMeshlet: 'commune.scheduler.meshlet',
  CommuneSchedulerMeshletOwner: 'commune.scheduler.meshletOwner',
  CommuneSchedulerShareDenial: 'commune.scheduler.shareDenial',
  CommuneSchedulerShareGrant: 'commune.scheduler.shareGrant',
  CommuneSchedulerShareRequest: 'commune.scheduler.shareRequest',
  CommuneSchedulerWorkload: 'commune.scheduler.workload',
  CommuneSchedulerWorkloadStatus: 'commune.scheduler.workloadStatus',
  FarmMeshletDefs: 'farm.meshlet.defs',
  FarmMeshletDeleteWorkload: 'farm.meshlet.deleteWorkload',
  FarmMeshletDrain: 'farm.meshlet.drain',
  FarmMeshletGetAuditLog: 'farm.meshlet.getAuditLog',
  FarmMeshletGetCapacity: 'farm.meshlet.getCapacity',
  FarmMeshletGetWorkloadLogs: 'farm.meshlet.getWorkloadLogs',
  FarmMeshletGetWorkloadStatus: 'farm.meshlet.getWorkloadStatus',
  FarmMeshletHealth: 'farm.meshlet.health',
  FarmMeshletListWorkloads: 'farm.meshlet.listWorkloads',
  FarmMeshletPair: 'farm.meshlet.pair',
  FarmMeshletPauseWorkload: 'farm.meshlet.pauseWorkload',
  FarmMeshletResumeWorkload: 'farm.meshlet.resumeWorkload',
  FarmMeshletUndrain: 'farm.meshlet.undrain',
} as const
