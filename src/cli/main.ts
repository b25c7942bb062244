#!/usr/bin/env node
// meshlet — the CLI entry. The version check comes before anything from @atproto is
// loaded: on an older Node those packages fail at import with an unhelpful stack trace.
import fs from 'node:fs'

const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  console.error(`meshlet: needs Node.js 22 or newer (the @atproto packages do); this is ${process.version}`)
  process.exit(1)
}

const isEntry = process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)
if (isEntry) {
  process.env.LOG_ENABLED ??= 'false'
  const { main, oneLine } = await import('./commands.js')
  main(process.argv.slice(2)).then(
    (code) => {
      // dev and run keep serving; everything else exits with its code
      if (code !== 0 || !['dev', 'run'].includes(process.argv[2])) process.exit(code)
    },
    (err) => {
      console.error(`meshlet: ${oneLine(err)}`)
      process.exit(1)
    },
  )
}
