/**
 * Endless, seeded, resumable streams of indices into a file list: the order in which the
 * trainer draws its content and style images.
 */
import path from 'node:path';
import { Rng, isRngState, type RngState } from './rng.js';

export interface EpochStreamState {
  /** Completed passes over the list. */
  epoch: number;
  /** The generator's state before this epoch's permutation was drawn. */
  epochStart: RngState;
  /** How many files of this epoch's permutation have been drawn. */
  position: number;
}

/**
 * A fresh random permutation per epoch, so every file is seen once per pass. Its state is the
 * generator's state at the start of the epoch plus the position in it; the permutation is
 * rebuilt from that on restore.
 */
export class EpochStream {
  private readonly rng: Rng;
  private order: number[] = [];
  private epoch = 0;
  private epochStart: RngState;
  private position = 0;

  constructor(
    private readonly count: number,
    seed: number,
    stream: string,
  ) {
    this.rng = new Rng(seed, stream);
    this.epochStart = this.rng.getState();
    this.shuffle();
  }

  private shuffle(): void {
    this.epochStart = this.rng.getState();
    this.order = this.rng.shuffle(Array.from({ length: this.count }, (_, i) => i));
    this.position = 0;
  }

  next(): number {
    if (this.position >= this.count) {
      this.epoch++;
      this.shuffle();
    }
    return this.order[this.position++];
  }

  state(): EpochStreamState {
    return { epoch: this.epoch, epochStart: this.epochStart, position: this.position };
  }

  restore(state: EpochStreamState): void {
    this.rng.setState(state.epochStart);
    this.shuffle();
    this.epoch = state.epoch;
    this.position = Math.min(state.position, this.count);
  }
}

export function isEpochStreamState(value: unknown): value is EpochStreamState {
  const s = value as EpochStreamState | null;
  return typeof s === 'object' && s !== null && Number.isSafeInteger(s.epoch) && Number.isSafeInteger(s.position) && isRngState(s.epochStart);
}

/**
 * The source of an image, for balancing: the first folder below `root` when the image sits in
 * one (a user's `styles/monet/...` layout), else the file-name prefix before `__` up to its first
 * hyphen (the shared corpus names files `<source-tag>__<stem>`), else the one source ''.
 */
export function sourceOf(file: string, root: string): string {
  const rel = root === '' ? file : path.relative(root, file);
  const parts = rel.split(path.sep);
  if (parts.length > 1) return parts[0];
  const cut = parts[0].indexOf('__');
  if (cut <= 0) return '';
  // tags carry versions and campaigns after the first hyphen (wesnoth-1.16-data, wesnoth-1-16-trow):
  // one package, one source
  return parts[0].slice(0, cut).split('-')[0] || parts[0].slice(0, cut);
}

export interface BalancedStreamState {
  /** The generator that picks a source for each draw. */
  picker: RngState;
  /** One epoch stream per source, in the order of `sources`. */
  sources: EpochStreamState[];
}

/**
 * Draws a source with probability proportional to the square root of its image count, then
 * the next image of that source's own epoch stream. A source of 200 near-alike images (one
 * painter, one clip-art set) then gets sqrt(200/10) = 4.5x the draws of a source of 10, not
 * 20x, while every image of a source is still seen once per pass over that source.
 */
export class BalancedStream {
  readonly sources: readonly string[];
  private readonly members: number[][];
  private readonly streams: EpochStream[];
  private readonly cumulative: number[];
  private readonly picker: Rng;

  constructor(files: readonly string[], root: string, seed: number, stream: string) {
    const bySource = new Map<string, number[]>();
    files.forEach((f, i) => {
      const s = sourceOf(f, root);
      const list = bySource.get(s);
      if (list) list.push(i);
      else bySource.set(s, [i]);
    });
    this.sources = [...bySource.keys()].sort();
    this.members = this.sources.map((s) => bySource.get(s) ?? []);
    this.streams = this.sources.map((s, i) => new EpochStream(this.members[i].length, seed, `${stream}/${s}`));
    let total = 0;
    this.cumulative = this.members.map((m) => (total += Math.sqrt(m.length)));
    this.picker = new Rng(seed, `${stream}/picker`);
  }

  /** The share of draws each source gets, for the run's log. */
  shares(): Map<string, number> {
    const total = this.cumulative[this.cumulative.length - 1];
    return new Map(this.sources.map((s, i) => [s, Math.sqrt(this.members[i].length) / total]));
  }

  next(): number {
    const u = this.picker.next() * this.cumulative[this.cumulative.length - 1];
    let g = this.cumulative.findIndex((c) => u < c);
    if (g < 0) g = this.cumulative.length - 1;
    return this.members[g][this.streams[g].next()];
  }

  state(): BalancedStreamState {
    return { picker: this.picker.getState(), sources: this.streams.map((s) => s.state()) };
  }

  restore(state: BalancedStreamState): void {
    this.picker.setState(state.picker);
    state.sources.forEach((s, i) => this.streams[i].restore(s));
  }
}

export function isBalancedStreamState(value: unknown, sources: number): value is BalancedStreamState {
  const s = value as BalancedStreamState | null;
  return typeof s === 'object' && s !== null && isRngState(s.picker) && Array.isArray(s.sources) && s.sources.length === sources && s.sources.every(isEpochStreamState);
}
