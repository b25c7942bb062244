// Runs async jobs with at most `limit` under way at once, in the order they came.
export class BoundedPool {
  private active = 0
  private queue: (() => void)[] = []
  private waiters: (() => void)[] = []

  constructor(private readonly limit: number) {}

  /** Jobs under way or waiting. */
  get busy(): boolean {
    return this.active > 0 || this.queue.length > 0
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const go = () => {
        this.active++
        job()
          .then(resolve, reject)
          .finally(() => {
            this.active--
            const next = this.queue.shift()
            if (next) next()
            else if (this.active === 0) for (const w of this.waiters.splice(0)) w()
          })
      }
      if (this.active < this.limit) go()
      else this.queue.push(go)
    })
  }

  /** Resolves when nothing is under way or waiting. */
  async idle(): Promise<void> {
    if (!this.busy) return
    await new Promise<void>((r) => this.waiters.push(r))
  }
}
