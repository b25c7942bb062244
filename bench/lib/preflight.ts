// What every Docker bench needs before it measures anything: an engine that answers and the
// test image present (no registry is reachable here to pull it).
import type Docker from 'dockerode'

export async function requireDockerAndImage(docker: Docker, image: string, fail: (message: string) => never): Promise<void> {
  await docker.ping().catch(() => fail('no Docker engine answers on /var/run/docker.sock'))
  await docker
    .getImage(image)
    .inspect()
    .catch(() => fail(`image ${image} is not present (npm test builds it: scripts/make-test-image.sh)`))
}
