// Docker-backed tests fail (never skip) when MESHLET_REQUIRE_DOCKER=1 and no engine answers.
import Docker from 'dockerode'

export async function dockerUp(): Promise<boolean> {
  try {
    await Promise.race([new Docker().ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000))])
    return true
  } catch {
    return false
  }
}

export async function requireDocker(): Promise<void> {
  if (!(await dockerUp())) throw new Error('no Docker engine answers on /var/run/docker.sock (start dockerd; .ci/run does)')
}
