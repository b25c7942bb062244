import { describe, expect, it } from 'vitest'
import { daemonConfig } from '../src/cli/daemon.js'

const base = {
  MESHLET_PDS: 'http://localhost:2583',
  MESHLET_HANDLE: 'm1.test',
  MESHLET_PASSWORD: 'pw',
  MESHLET_DATA_DIR: '/tmp/meshlet-config-test',
}

describe('meshlet run: configuration from flags and environment', () => {
  it('reads a whole number from the environment', () => {
    expect(daemonConfig({}, { ...base, MESHLET_DISK_FLOOR_MIB: '1024' }).diskFloorMiB).toBe(1024)
  })

  it('treats an empty variable as unset (compose passes ${X:-} through as ""), so the default applies', () => {
    const cfg = daemonConfig({}, { ...base, MESHLET_DISK_FLOOR_MIB: '', MESHLET_WRITE_BUDGET: '', MESHLET_HOST: '' })
    expect(cfg.diskFloorMiB).toBeUndefined()
    expect(cfg.writePointsPerHour).toBeUndefined()
    expect(cfg.host).toBeUndefined()
    expect(cfg.plcUrl).toBe('https://plc.directory')
  })

  it('an empty required variable is missing, with its name', () => {
    expect(() => daemonConfig({}, { ...base, MESHLET_PASSWORD: '' })).toThrow('missing configuration: password')
  })

  it('a flag wins over the environment, and a malformed number is a clear error', () => {
    expect(daemonConfig({ 'disk-floor': '5' }, { ...base, MESHLET_DISK_FLOOR_MIB: '1024' }).diskFloorMiB).toBe(5)
    expect(() => daemonConfig({}, { ...base, MESHLET_DISK_FLOOR_MIB: '1.5G' })).toThrow('--disk-floor must be a whole number, not 1.5G')
  })
})
