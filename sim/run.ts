// `npm run sim`: a commune of meshlets in simulated time (sim/commune.ts). Progress goes
// to stderr; the last line on stdout is the report as JSON.
//   npm run sim -- --meshlets 1000 --workloads 10000 --seed 20261124
import { simulate } from './commune.js'

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

const meshlets = flag('meshlets', 'SIM_MESHLETS', 1000)
const workloads = flag('workloads', 'SIM_WORKLOADS', 10000)
const seed = flag('seed', 'SIM_SEED', 20261124)
console.error(`sim: ${meshlets} meshlets, ${workloads} workloads, seed ${seed}`)
const report = simulate({ meshlets, workloads, seed, progress: (line) => console.error(line) })
console.log(JSON.stringify(report))
process.exit(report.violations.count === 0 ? 0 : 1)
