import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(name: string, level = process.env.MESHLET_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level })
}

/** A logger that drops everything: for tests that assert on behaviour, not output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
