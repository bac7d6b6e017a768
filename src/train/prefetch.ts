/**
 * Preparing training batches ahead of the consumer. Image decoding runs in libvips' threads
 * (sharp is asynchronous), so keeping a few batches in flight means the training step finds the
 * next batch ready instead of waiting on JPEG decoding.
 *
 * Determinism: every random draw a batch needs (which pairs, which crops, which replacements
 * for unreadable files) is made synchronously, in batch order, when the batch is started; the
 * asynchronous part only uses generators forked for it. So the same seed gives the same batches
 * in the same order whatever the timing.
 */
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { quoteName, type RgbImage } from '../image/io.js';
import { UnreadableImageError, commonFolder, loadTrainingImage, makeBatch, type PairSampler, type PairSamplerState } from './data.js';
import { Rng, isRngState, type RngState } from './rng.js';

export interface PrefetchStats {
  /** Items handed to the consumer. */
  items: number;
  /** Total milliseconds the consumer spent waiting in next(). */
  waitMs: number;
  /** Of which waiting for the first item (the pipeline filling up). */
  firstWaitMs: number;
  /** The longest single wait, in milliseconds. */
  maxWaitMs: number;
  /** How many times next() found its item not ready yet (the first item included). */
  stalls: number;
}

export interface PrefetchQueueOptions<T, S> {
  /** How many items to keep in preparation ahead of the consumer (at least 1). */
  depth: number;
  /**
   * Starts preparing the next item. Called in item order; it must make all its ordering-
   * relevant decisions (random draws) synchronously, before its first await.
   */
  start: () => Promise<T>;
  /** Captures the producer's state just before start(); state() reports it for the next item. */
  snapshot?: () => S;
}

interface Entry<T, S> {
  promise: Promise<T>;
  ready: boolean;
  snapshot: S | undefined;
}

/** A queue of items prepared concurrently ahead of the consumer, handed out in order. */
export class PrefetchQueue<T, S = undefined> {
  private readonly entries: Entry<T, S>[] = [];
  private readonly depth: number;
  private readonly startItem: () => Promise<T>;
  private readonly snapshotFn: (() => S) | undefined;
  private closed = false;
  private readonly statsValue: PrefetchStats = { items: 0, waitMs: 0, firstWaitMs: 0, maxWaitMs: 0, stalls: 0 };

  constructor(opts: PrefetchQueueOptions<T, S>) {
    if (!Number.isInteger(opts.depth) || opts.depth < 1) throw new RangeError(`prefetch depth must be a positive integer, got ${opts.depth}`);
    this.depth = opts.depth;
    this.startItem = opts.start;
    this.snapshotFn = opts.snapshot;
    this.fill();
  }

  private fill(): void {
    while (!this.closed && this.entries.length < this.depth) {
      const snapshot = this.snapshotFn?.();
      let promise: Promise<T>;
      try {
        promise = this.startItem();
      } catch (err) {
        promise = Promise.reject(err);
      }
      const entry: Entry<T, S> = { promise, ready: false, snapshot };
      // Mark readiness and keep a failure from being reported as unhandled while it waits in
      // the queue; the consumer still gets the rejection from next().
      promise.then(
        () => (entry.ready = true),
        () => (entry.ready = true),
      );
      this.entries.push(entry);
    }
  }

  /** The next item, in order; starts preparing another one at once. */
  async next(): Promise<T> {
    if (this.closed) throw new Error('the prefetch queue is closed');
    const entry = this.entries.shift()!;
    this.fill();
    const first = this.statsValue.items === 0;
    if (!entry.ready) this.statsValue.stalls++;
    const t0 = performance.now();
    try {
      return await entry.promise;
    } finally {
      const waited = performance.now() - t0;
      const s = this.statsValue;
      s.items++;
      s.waitMs += waited;
      if (first) s.firstWaitMs = waited;
      s.maxWaitMs = Math.max(s.maxWaitMs, waited);
    }
  }

  /** The producer's state from just before the item next() will return was started. */
  state(): S {
    if (this.entries.length === 0) throw new Error('the prefetch queue is closed');
    return this.entries[0].snapshot as S;
  }

  stats(): PrefetchStats {
    return { ...this.statsValue };
  }

  /** Stops preparing items and waits for those in flight to finish (their results are dropped). */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.entries.splice(0).map((e) => e.promise);
    await Promise.allSettled(pending);
  }
}

// ---------------------------------------------------------------------------------------------
// Training batches

export interface TrainingBatch {
  /** 0-based number of the batch in the run (continues across a resume). */
  index: number;
  /** [B,3,crop,crop] content crops, planar RGB in [0,1]. */
  content: Float32Array;
  /** [B,3,crop,crop] style crops. */
  style: Float32Array;
  /** The files the crops came from (after replacing unreadable ones). */
  contentFiles: string[];
  styleFiles: string[];
}

/** Everything needed to continue the batch stream exactly (JSON-serialisable). */
export interface TrainingBatchesState {
  version: 1;
  /** The index of the next batch next() returns. */
  index: number;
  sampler: PairSamplerState;
  rng: RngState;
}

export interface TrainingBatchesOptions {
  batchSize: number;
  /** The shorter side images are resized to before cropping. */
  loadSize: number;
  crop: number;
  /** The seed for crop positions and replacements (pairs come from the sampler's own seed). */
  seed: number;
  /** Batches prepared ahead of the consumer. Default 2. */
  depth?: number;
  /** Called once per unreadable file, with a one-line message. Default: ignore. */
  warn?: (message: string) => void;
  /** Continue from a state() taken earlier (restores the sampler too). */
  resume?: TrainingBatchesState;
  /** Refuse images with more pixels than this (skipped as unreadable). Default 100e6. */
  maxPixels?: number;
}

type Kind = 'content' | 'style';

/**
 * The endless stream of training batches: pairs from the sampler, random crops, prefetched
 * `depth` batches ahead. An unreadable file is skipped with one warning (the first time it is
 * met) and replaced by another file of the same folder drawn at random from the slot's own
 * generator; when every file of a folder has failed, next() rejects with a UserError.
 */
export class TrainingBatches {
  private readonly queue: PrefetchQueue<TrainingBatch, TrainingBatchesState>;
  private readonly rng: Rng;
  private index = 0;
  private readonly bad: Record<Kind, Map<string, string>> = { content: new Map(), style: new Map() };
  private readonly uniqueCount: Record<Kind, number>;
  private readonly opts: TrainingBatchesOptions;

  constructor(
    private readonly sampler: PairSampler,
    opts: TrainingBatchesOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    this.opts = opts;
    this.rng = new Rng(opts.seed, 'batches');
    this.uniqueCount = { content: new Set(sampler.contents).size, style: new Set(sampler.styles).size };
    if (opts.resume !== undefined) {
      const r = opts.resume;
      if (r === null || typeof r !== 'object' || r.version !== 1 || !Number.isSafeInteger(r.index) || !isRngState(r.rng)) {
        throw new UserError('the checkpoint holds no valid batch-stream state; it was not written by this version of the trainer');
      }
      sampler.restore(r.sampler);
      this.rng.setState(r.rng);
      this.index = r.index;
    }
    this.queue = new PrefetchQueue({
      depth: opts.depth ?? 2,
      start: () => this.startBatch(),
      snapshot: () => ({ version: 1 as const, index: this.index, sampler: this.sampler.state(), rng: this.rng.getState() }),
    });
  }

  /** The next batch, in a deterministic order. */
  next(): Promise<TrainingBatch> {
    return this.queue.next();
  }

  /** The state to save with a checkpoint: resuming from it yields the batch next() would return. */
  state(): TrainingBatchesState {
    return this.queue.state();
  }

  /** Wait-time statistics: a waitMs near firstWaitMs means the training step never waited. */
  stats(): PrefetchStats {
    return this.queue.stats();
  }

  /** The files found unreadable so far, with the reason. */
  unreadable(): { file: string; kind: Kind; reason: string }[] {
    return (['content', 'style'] as const).flatMap((kind) => [...this.bad[kind]].map(([file, reason]) => ({ file, kind, reason })));
  }

  close(): Promise<void> {
    return this.queue.close();
  }

  private startBatch(): Promise<TrainingBatch> {
    // Synchronous: every draw this batch needs, in a fixed order.
    const index = this.index++;
    const slots: { kind: Kind; file: string; rng: Rng }[] = [];
    for (let i = 0; i < this.opts.batchSize; i++) {
      const pair = this.sampler.next();
      slots.push({ kind: 'content', file: pair.content, rng: this.rng.fork() });
      slots.push({ kind: 'style', file: pair.style, rng: this.rng.fork() });
    }
    // Asynchronous: the decoding, using only the generators forked above.
    return (async () => {
      const loaded = await Promise.all(slots.map((s) => this.loadSlot(s.kind, s.file, s.rng)));
      const content = loaded.filter((_, i) => i % 2 === 0);
      const style = loaded.filter((_, i) => i % 2 === 1);
      return {
        index,
        content: makeBatch(content.map((l) => l.image)),
        style: makeBatch(style.map((l) => l.image)),
        contentFiles: content.map((l) => l.file),
        styleFiles: style.map((l) => l.file),
      };
    })();
  }

  /**
   * Loads `file`, or replacements for it. Each attempt uses a generator forked from the slot's
   * generator for its crop and then draws the next candidate from the slot's generator, so the
   * outcome does not depend on whether a file was already known to be bad (known bad files are
   * just not read again).
   */
  private async loadSlot(kind: Kind, file: string, rng: Rng): Promise<{ file: string; image: RgbImage }> {
    const files = kind === 'content' ? this.sampler.contents : this.sampler.styles;
    const bad = this.bad[kind];
    let candidate = file;
    for (;;) {
      const cropRng = rng.fork();
      if (!bad.has(candidate)) {
        try {
          const image = await loadTrainingImage(candidate, {
            loadSize: this.opts.loadSize,
            crop: this.opts.crop,
            rng: cropRng,
            maxPixels: this.opts.maxPixels,
          });
          return { file: candidate, image };
        } catch (err) {
          if (!(err instanceof UnreadableImageError)) throw err;
          if (!bad.has(candidate)) {
            bad.set(candidate, err.reason);
            this.opts.warn?.(`skipping unreadable ${kind} image ${quoteName(candidate)} (${err.reason})`);
          }
        }
      }
      if (bad.size >= this.uniqueCount[kind]) {
        throw new UserError(
          `none of the ${this.uniqueCount[kind]} ${kind} images under ${quoteName(commonFolder(files))} can be read ` +
            `(the last: ${quoteName(candidate)}, ${bad.get(candidate)}); check the ${kind} folder`,
        );
      }
      candidate = files[rng.int(files.length)];
    }
  }
}
