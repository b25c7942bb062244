// Write points, as hosted PDSes charge them (Bluesky's: 5,000 points an hour per account;
// a create costs 3, an update 2, a delete 1), over a sliding hour. The meshlet keeps under
// its own budget by declining new work before the PDS would refuse its writes: the
// replicas it already runs still need their status updates.
export const WRITE_POINTS = { create: 3, update: 2, delete: 1 } as const
const HOUR_MS = 3_600_000
/** Under the 5,000 a hosted PDS allows: the rest covers heartbeats and the owner's manual calls. */
export const DEFAULT_WRITE_POINTS_PER_HOUR = 4500

/** What one more replica costs, offer to end: its bid (create), `scheduled` (create), `running` and the outcome (updates). */
export const POINTS_PER_REPLICA = WRITE_POINTS.create * 2 + WRITE_POINTS.update * 2

export class WriteBudget {
  private spent: { at: number; points: number }[] = []

  constructor(
    /** Points allowed per sliding hour (0: no budget). */
    readonly pointsPerHour: number,
    private readonly now: () => number = Date.now,
  ) {}

  spend(points: number): void {
    if (points > 0) this.spent.push({ at: this.now(), points })
  }

  /** Points spent in the last hour. */
  used(): number {
    const since = this.now() - HOUR_MS
    while (this.spent.length && this.spent[0].at <= since) this.spent.shift()
    return this.spent.reduce((n, s) => n + s.points, 0)
  }

  /**
   * Why this meshlet takes no new work now, if it takes none: the points left this hour
   * must still cover the replicas it holds (their `running` and outcome) and an offer.
   */
  refusal(heldReplicas: number): string | undefined {
    if (!this.pointsPerHour) return undefined
    const left = this.pointsPerHour - this.used()
    const need = heldReplicas * WRITE_POINTS.update * 2 + POINTS_PER_REPLICA
    return left < need ? `write budget: ${Math.max(0, left)} of ${this.pointsPerHour} points left this hour` : undefined
  }
}
