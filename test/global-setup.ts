// Before any test: on a machine with a Docker engine, the test image is built when it is
// missing (as `npm start` does), so `npm test` needs nothing beyond Node 22 and Docker.
// No registry is reachable here: the image is a static busybox imported as a rootfs.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import Docker from 'dockerode'
import { dockerUp } from './helpers/docker.js'

export default async function setup(): Promise<void> {
  const image = process.env.MESHLET_TEST_IMAGE ?? 'meshlet-test/busybox:latest'
  if (!(await dockerUp())) return
  if (await new Docker().getImage(image).inspect().then(() => true, () => false)) return
  if (!fs.existsSync('/bin/busybox')) throw new Error(`the test image ${image} is missing and cannot be built: apt-get install busybox-static`)
  const r = spawnSync('bash', ['scripts/make-test-image.sh', image], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`scripts/make-test-image.sh failed (exit ${r.status})`)
}
