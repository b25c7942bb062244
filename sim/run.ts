// `npm run sim`: a commune of meshlets in simulated time (sim/commune.ts). Progress goes
// to stderr; the last line on stdout is the report as JSON.
//   npm run sim -- --meshlets 1000 --workloads 10000 --seed 20261124
//   npm run sim -- --history 100000 [--meshlets 30] [--retention 3600]
//                                       one meshlet's cost as history grows (sim/history.ts)
import { simulate } from './commune.js'
import { history } from './history.js'

function flag(name: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  const raw = i >= 0 ? process.argv[i + 1] : process.env[env]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`sim: --${name} must be a positive integer, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return n
}

if (process.argv.includes('--history')) {
  const finished = flag('history', 'SIM_HISTORY', 100_000)
  const members = flag('meshlets', 'SIM_MESHLETS', 30)
  const seed = flag('seed', 'SIM_SEED', 20261124)
  const retention = process.argv.includes('--retention') ? flag('retention', 'SIM_RETENTION', 86_400) : undefined
  console.error(`sim: one view of ${members} meshlets, history up to ${finished} finished workloads, retention ${retention ?? 'none'}`)
  const retentionMs = retention === undefined ? undefined : retention * 1000
  console.log(JSON.stringify(history({ meshlets: members, finished, seed, retentionMs, progress: (line) => console.error(line) })))
  process.exit(0)
}

const meshlets = flag('meshlets', 'SIM_MESHLETS', 1000)
const workloads = flag('workloads', 'SIM_WORKLOADS', 10000)
const seed = flag('seed', 'SIM_SEED', 20261124)
console.error(`sim: ${meshlets} meshlets, ${workloads} workloads, seed ${seed}`)
const report = simulate({ meshlets, workloads, seed, progress: (line) => console.error(line) })
console.log(JSON.stringify(report))
process.exit(report.violations.count === 0 ? 0 : 1)
