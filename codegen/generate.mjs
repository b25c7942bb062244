// Regenerates src/lexicon/ from lexicons/ with @atproto/lex-cli (gen-server).
// Output is deterministic: the file list is sorted and the target is wiped first,
// so running this twice leaves no diff.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const outDir = path.join(root, 'src/lexicon')

function listJson(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) return listJson(p)
      return e.name.endsWith('.json') ? [p] : []
    })
}

const files = listJson(path.join(root, 'lexicons'))
  .map((f) => path.relative(root, f))
  .sort()

fs.rmSync(outDir, { recursive: true, force: true })
execFileSync(
  path.join(root, 'node_modules/.bin/lex'),
  ['gen-server', '--yes', 'src/lexicon', ...files],
  { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
)
console.log(`codegen: ${files.length} lexicons -> src/lexicon/`)
