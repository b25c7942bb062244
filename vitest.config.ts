import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own PLC + PDS; running files in parallel on two cores
    // mostly measures contention, so files run one at a time.
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-results.json' },
  },
})
