/**
 * Learning-rate schedules, as functions of the 0-based iteration:
 * - `inverse` (the paper's and the Lua/PyTorch ports'): lr / (1 + decay * iter), decay 5e-5;
 * - `step` (the seed's): lr * gamma^floor(iter / everyIters), gamma 0.1 every 15 epochs.
 */
import { UserError } from '../errors.js';

export type LrSchedule = (iter: number) => number;

export function inverseDecay(lr: number, decay: number): LrSchedule {
  return (iter) => lr / (1 + decay * iter);
}

export function stepDecay(lr: number, gamma: number, everyIters: number): LrSchedule {
  if (!(everyIters > 0)) throw new RangeError(`stepDecay: everyIters must be > 0, got ${everyIters}`);
  return (iter) => lr * gamma ** Math.floor(iter / everyIters);
}

export const DEFAULT_INVERSE_DECAY = 5e-5;
export const DEFAULT_STEP_GAMMA = 0.1;
export const DEFAULT_STEP_EPOCHS = 15;

/** A parsed `--lr-schedule`; `everyIters` absent means "every 15 epochs" (resolved by buildSchedule). */
export type LrScheduleSpec =
  | { kind: 'inverse'; decay: number }
  | { kind: 'step'; gamma: number; everyIters?: number };

const USAGE = "use 'inverse', 'inverse:<decay>', 'step', 'step:<gamma>' or 'step:<gamma>:<every-iters>' (e.g. inverse:5e-5, step:0.1:20000)";

/**
 * Parses `--lr-schedule`: `inverse[:decay]` or `step[:gamma[:everyIters]]`. Usable directly as a
 * commander option parser; a bad value is a UserError naming the flag.
 */
export function parseLrSchedule(value: string): LrScheduleSpec {
  const [kind, ...args] = value.trim().toLowerCase().split(':');
  const bad = (why: string) => new UserError(`--lr-schedule ${JSON.stringify(value)}: ${why}; ${USAGE}`);
  const num = (s: string, what: string, check: (x: number) => boolean) => {
    const x = Number(s);
    if (s === '' || !Number.isFinite(x) || !check(x)) throw bad(`${what} ${JSON.stringify(s)} is not valid`);
    return x;
  };
  if (kind === 'inverse') {
    if (args.length > 1) throw bad('too many fields');
    return { kind, decay: args.length ? num(args[0], 'decay', (x) => x >= 0) : DEFAULT_INVERSE_DECAY };
  }
  if (kind === 'step') {
    if (args.length > 2) throw bad('too many fields');
    const gamma = args.length ? num(args[0], 'gamma', (x) => x > 0) : DEFAULT_STEP_GAMMA;
    const spec: LrScheduleSpec = { kind, gamma };
    if (args.length === 2) spec.everyIters = num(args[1], 'every-iters', (x) => Number.isInteger(x) && x > 0);
    return spec;
  }
  throw bad(`unknown schedule ${JSON.stringify(kind)}`);
}

/**
 * The schedule for base rate `lr`. A `step` spec without everyIters decays every
 * 15 epochs, which needs `itersPerEpoch` (dataset size / batch size).
 */
export function buildSchedule(spec: LrScheduleSpec, lr: number, opts: { itersPerEpoch?: number } = {}): LrSchedule {
  if (spec.kind === 'inverse') return inverseDecay(lr, spec.decay);
  let every = spec.everyIters;
  if (every === undefined) {
    if (!opts.itersPerEpoch || opts.itersPerEpoch <= 0) {
      throw new UserError(`--lr-schedule step needs the decay interval when the epoch length is unknown; ${USAGE}`);
    }
    every = Math.max(1, Math.round(DEFAULT_STEP_EPOCHS * opts.itersPerEpoch));
  }
  return stepDecay(lr, spec.gamma, every);
}

/** One-line description for logs and checkpoint configs. */
export function describeSchedule(spec: LrScheduleSpec): string {
  return spec.kind === 'inverse'
    ? `inverse:${spec.decay}`
    : `step:${spec.gamma}${spec.everyIters !== undefined ? `:${spec.everyIters}` : ''}`;
}
