// Regenerates src/lexicon/ from lexicons/ with @atproto/lex-cli (gen-server).
// Deterministic: the file list is sorted and the output replaces the old tree whole, so
// running this twice leaves no diff. Generation happens in a temporary directory first,
// so a failure never leaves src/lexicon half-written.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const outDir = path.join(root, 'src/lexicon')

// Resolve lex-cli's own entry: node_modules/.bin/lex may be @atproto/lex's CLI instead
// (both packages name their binary `lex`, and which one npm links depends on hoisting).
const lexCliPkg = path.join(root, 'node_modules/@atproto/lex-cli/package.json')
const { bin } = JSON.parse(fs.readFileSync(lexCliPkg, 'utf8'))
const lexCli = path.join(path.dirname(lexCliPkg), typeof bin === 'string' ? bin : bin.lex)

function listJson(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return listJson(p)
    return e.name.endsWith('.json') ? [p] : []
  })
}

const files = listJson(path.join(root, 'lexicons'))
  .map((f) => path.relative(root, f))
  .sort()

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlet-codegen-'))
try {
  execFileSync(process.execPath, [lexCli, 'gen-server', '--yes', tmp, ...files], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.cpSync(tmp, outDir, { recursive: true })
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}
console.log(`codegen: ${files.length} lexicons -> src/lexicon/`)
