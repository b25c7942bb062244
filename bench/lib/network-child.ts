// The PLC and PDS of bench/lib/network-process.ts, in the child process: prints its URLs as
// one JSON line, then serves until its stdin closes (the parent exited or closed it).
process.env.LOG_ENABLED ??= 'false'
import { DevNetwork } from '../../src/dev/network.js'

const net = await DevNetwork.start()
process.stdout.write(`${JSON.stringify({ pdsUrl: net.pdsUrl, plcUrl: net.plcUrl })}\n`)
process.stdin.on('end', () => {
  void net.close().finally(() => process.exit(0))
})
process.stdin.resume()
