/**
 * A bounded job queue: at most `concurrency` jobs run at once and at most `maxWaiting` wait
 * behind them; one more is refused at once (the server answers 503 with Retry-After), so that
 * a burst of requests cannot pile up unbounded memory or latency.
 */

export class QueueFullError extends Error {
  constructor(readonly retryAfterS: number) {
    super('the server is busy: too many stylisations are queued');
    this.name = 'QueueFullError';
  }
}

export class QueueAbortedError extends Error {
  constructor(message = 'the job was cancelled before it started') {
    super(message);
    this.name = 'QueueAbortedError';
  }
}

interface Waiter {
  start: () => void;
  cancel: (err: Error) => void;
}

export interface QueueStats {
  running: number;
  waiting: number;
  concurrency: number;
  maxWaiting: number;
  completed: number;
  rejected: number;
  /** Moving average of job durations in ms (0 before the first job). */
  avgJobMs: number;
}

export class JobQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private completed = 0;
  private rejected = 0;
  private avgMs = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly maxWaiting: number) {
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    if (!(Number.isInteger(maxWaiting) && maxWaiting >= 0)) throw new RangeError(`maxWaiting must be a non-negative integer, got ${maxWaiting}`);
  }

  stats(): QueueStats {
    return {
      running: this.running, waiting: this.waiting.length, concurrency: this.concurrency, maxWaiting: this.maxWaiting,
      completed: this.completed, rejected: this.rejected, avgJobMs: Math.round(this.avgMs),
    };
  }

  /** Seconds until a slot is likely free: the work ahead divided among the workers, at least 1. */
  retryAfterSeconds(): number {
    const perJob = this.avgMs || 1000;
    return Math.max(1, Math.ceil(((this.waiting.length + this.running) * perJob) / this.concurrency / 1000));
  }

  /**
   * Runs `fn` when a slot is free. Throws QueueFullError at once when the queue is full, and
   * QueueAbortedError if `signal` aborts while the job is still waiting. A job that has started
   * holds its slot until `fn` settles: stopping early is up to `fn` (the stylisation watches the
   * same signal between tiles, since onnxruntime cannot interrupt a run).
   */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new QueueAbortedError();
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        this.rejected++;
        throw new QueueFullError(this.retryAfterSeconds());
      }
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          start: () => { signal?.removeEventListener('abort', onAbort); resolve(); },
          cancel: reject,
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new QueueAbortedError());
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
      // the slot was handed over by the finishing job: `running` already counts us
    } else {
      this.running++;
    }
    const started = performance.now();
    try {
      return await fn();
    } finally {
      const ms = performance.now() - started;
      this.avgMs = this.avgMs === 0 ? ms : 0.8 * this.avgMs + 0.2 * ms;
      this.completed++;
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running--;
      if (this.running === 0 && this.waiting.length === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /** Resolves once no job runs or waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
