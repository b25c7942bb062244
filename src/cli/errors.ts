/** A user-facing failure: its message is the whole one-line answer. */
export class CliError extends Error {}
