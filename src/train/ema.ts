/**
 * An exponential moving average of the decoder's weights (Polyak averaging). With batch 8 and a
 * fine-tuning learning rate the weights wander from step to step (session 6/7: the validation
 * moved by +-10% between checks 250 steps apart); the average over the last ~1/(1 - decay) steps
 * sits nearer the middle of that wandering. It does not change the training (Adam still updates
 * the raw weights); it changes which weights are validated and saved as the decoder.
 */
import { UserError } from '../errors.js';

export class WeightAverage {
  /** The averaged values, by parameter name (`dec4_1.weight` ...). */
  readonly values: Map<string, Float32Array>;

  /**
   * `params` are the live training arrays (Adam updates them in place); `from` is an average
   * saved in a checkpoint, else the average starts at the current weights.
   */
  constructor(private readonly params: ReadonlyMap<string, Float32Array>, readonly decay: number, from?: ReadonlyMap<string, Float32Array>) {
    if (!(decay > 0 && decay < 1)) throw new UserError(`--ema must be between 0 and 1 (e.g. 0.999), got ${decay}`);
    this.values = new Map();
    for (const [name, p] of params) {
      const saved = from?.get(name);
      if (saved && saved.length !== p.length) throw new UserError(`the checkpoint's weight average for ${name} has ${saved.length} values, the weight ${p.length}; the file is damaged, resume from another checkpoint`);
      this.values.set(name, Float32Array.from(saved ?? p));
    }
  }

  /** After each optimiser step: average = decay * average + (1 - decay) * weights. */
  update(): void {
    const d = this.decay, e = 1 - d;
    for (const [name, p] of this.params) {
      const a = this.values.get(name)!;
      for (let i = 0; i < a.length; i++) a[i] = d * a[i] + e * p[i];
    }
  }

  /** Runs `fn` with the averaged values in the live arrays (whatever reads them sees the average), then puts the weights back. */
  async withAverage<T>(fn: () => Promise<T>): Promise<T> {
    const saved = new Map([...this.params].map(([name, p]) => [name, Float32Array.from(p)]));
    for (const [name, p] of this.params) p.set(this.values.get(name)!);
    try {
      return await fn();
    } finally {
      for (const [name, p] of this.params) p.set(saved.get(name)!);
    }
  }
}
