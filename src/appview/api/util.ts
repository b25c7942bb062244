export const json = <T>(body: T) => ({ encoding: 'application/json' as const, body })
