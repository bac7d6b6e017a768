/**
 * Less flicker: AdaIN normalises each frame with that frame's own feature mean and std, and
 * small changes in those from frame to frame make the whole painting pulse. Smoothing them
 * across frames (an exponential moving average) steadies the normalisation; a scene cut
 * restarts the average so that the new shot is not normalised with the old one's statistics.
 */
import { BYTE_TO_UNIT, fromInterleavedU8, toInterleavedU8, type RgbImage } from '../image/io.js';
import type { ChannelStats } from '../stylize/features.js';

/**
 * Chosen with scripts/flicker.ts (table in docs/VIDEO.md): smoothing the statistics did not
 * lower flicker on pans or zooms (under 1%) and raised it under exposure changes (which
 * per-frame normalisation cancels), so it is off; blending at 0.8 cut flicker by 35% for a
 * 4% larger style distance with either test style (0.7 only just reached 30%).
 */
export const DEFAULT_TEMPORAL = 0;
export const DEFAULT_TEMPORAL_BLEND = 0.8;

export interface TemporalOptions {
  /** Weight of the past in the moving average, in [0, 1]: 0 = every frame on its own, 1 = the first frame of each shot for the whole shot. */
  strength: number;
  /** A mean absolute pixel change (0..1) between consecutive frames above this is a cut. */
  pixelCut?: number;
  /** A change of the feature statistics (in units of their std, see statJump) above this is a cut. */
  statCut?: number;
}

// Calibrated with scripts/flicker.ts: a slow pan or zoom changes pixels by ~0.01-0.05 and the
// statistics by ~0.01-0.05; cuts between unrelated photos were >= 0.15 and >= 0.3.
export const DEFAULT_PIXEL_CUT = 0.12;
export const DEFAULT_STAT_CUT = 0.2;

/** Mean over channels of |mean - mean'| / std': how far a frame's statistics moved, scale-free. */
export function statJump(a: ChannelStats, b: ChannelStats): number {
  let s = 0;
  for (let i = 0; i < a.mean.length; i++) s += Math.abs(a.mean[i] - b.mean[i]) / b.std[i];
  return s / a.mean.length;
}

/** Mean absolute difference of two frames of bytes, in [0, 1]. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`frames of ${a.length} and ${b.length} bytes`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / (255 * a.length);
}

export class TemporalStats {
  private mean: Float32Array | undefined;
  private std: Float32Array | undefined;
  /** Frames at which the average restarted (frame 0 included). */
  readonly cuts: number[] = [];
  private frame = -1;
  private readonly pixelCut: number;
  private readonly statCut: number;

  constructor(private readonly opts: TemporalOptions) {
    if (!(opts.strength >= 0 && opts.strength <= 1)) throw new RangeError(`temporal strength must be in [0, 1], got ${opts.strength}`);
    this.pixelCut = opts.pixelCut ?? DEFAULT_PIXEL_CUT;
    this.statCut = opts.statCut ?? DEFAULT_STAT_CUT;
  }

  /** The statistics to normalise the next frame with, given its own and its pixel change from the previous frame. */
  next(measured: ChannelStats, pixelChange = 0): ChannelStats {
    this.frame++;
    const s = this.opts.strength;
    const cut = !this.mean || !this.std || pixelChange > this.pixelCut || statJump(measured, { mean: this.mean, std: this.std }) > this.statCut;
    if (cut || s === 0) {
      if (cut) this.cuts.push(this.frame);
      this.mean = measured.mean.slice();
      this.std = measured.std.slice();
      return measured;
    }
    const mean = this.mean!, std = this.std!;
    for (let i = 0; i < mean.length; i++) {
      mean[i] = s * mean[i] + (1 - s) * measured.mean[i];
      std[i] = s * std[i] + (1 - s) * measured.std[i];
    }
    return { mean: mean.slice(), std: std.slice() };
  }
}

/** How fast the blend weight falls with the input's change: at a change of 0.03 (8 levels of 255) it is 1/e. */
export const DEFAULT_BLEND_SIGMA = 0.03;

/**
 * Mean absolute difference of two frames of RGB bytes, in [0, 1], as meanAbsDiff, keeping
 * each pixel's summed change over its three channels (0..765) in `perPixel` for OutputBlend:
 * one pass over the two frames serves both the cut detector and the blend.
 */
export function frameChange(a: Uint8Array, b: Uint8Array, perPixel: Uint16Array): number {
  if (a.length !== b.length) throw new RangeError(`frames of ${a.length} and ${b.length} bytes`);
  const n = a.length / 3;
  if (perPixel.length !== n) throw new RangeError(`${perPixel.length} change slots for ${n} pixels`);
  let s = 0;
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    const d = Math.abs(a[k] - b[k]) + Math.abs(a[k + 1] - b[k + 1]) + Math.abs(a[k + 2] - b[k + 2]);
    perPixel[i] = d;
    s += d;
  }
  return s / (255 * a.length);
}

/**
 * io.ts's fromInterleavedU8 (3 channels) and frameChange(previous, bytes, perPixel) in one pass
 * over the frame's bytes, for the video loop; without a previous frame the change is 0 and
 * perPixel is left alone.
 */
export function planarWithChange(bytes: Uint8Array, width: number, height: number, previous: Uint8Array | undefined, perPixel: Uint16Array | undefined): { image: RgbImage; change: number } {
  const n = width * height;
  if (bytes.length !== 3 * n) throw new RangeError(`pixel buffer has ${bytes.length} bytes, ${width}x${height}x3 needs ${3 * n}`);
  if (!previous || !perPixel) return { image: fromInterleavedU8(bytes, width, height), change: 0 };
  if (previous.length !== bytes.length) throw new RangeError(`frames of ${previous.length} and ${bytes.length} bytes`);
  if (perPixel.length !== n) throw new RangeError(`${perPixel.length} change slots for ${n} pixels`);
  const data = new Float32Array(3 * n);
  const lut = BYTE_TO_UNIT;
  let s = 0;
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    const r = bytes[k], g = bytes[k + 1], b = bytes[k + 2];
    data[i] = lut[r];
    data[n + i] = lut[g];
    data[2 * n + i] = lut[b];
    const d = Math.abs(previous[k] - r) + Math.abs(previous[k + 1] - g) + Math.abs(previous[k + 2] - b);
    perPixel[i] = d;
    s += d;
  }
  return { image: { width, height, data }, change: s / (255 * bytes.length) };
}

/**
 * Less texture boiling: where the input pixel did not change from the previous frame, the
 * output pixel should not either, yet the decoder repaints it a little differently every
 * frame (codec and sensor noise are enough). Each output pixel is mixed with the previous
 * output by strength * exp(-change / sigma), change being that pixel's mean absolute input
 * change: still areas settle, moving ones follow the new frame, without optical flow.
 */
export class OutputBlend {
  private previous: Float32Array | undefined;
  private previousInput: Uint8Array | undefined;
  /** The weight for each summed change 0..765: a table, since exp per pixel cost more than the rest of the blend. */
  private readonly weights: Float64Array;
  private changes: Uint16Array | undefined;

  constructor(private readonly strength: number, private readonly sigma = DEFAULT_BLEND_SIGMA) {
    if (!(strength >= 0 && strength < 1)) throw new RangeError(`blend strength must be in [0, 1), got ${strength}`);
    const k = 1 / (3 * 255 * sigma);
    this.weights = Float64Array.from({ length: 3 * 255 + 1 }, (_, d) => strength * Math.exp(-d * k));
  }

  /**
   * Blends `output` (planar RGB floats) in place with the previous one; `input` is the frame's
   * interleaved RGB bytes; a cut restarts. `changes`, when given, is frameChange's per-pixel
   * change between the previous input and this one (else it is computed here).
   */
  apply(output: Float32Array, input: Uint8Array, cut: boolean, changes?: Uint16Array): void {
    const n = input.length / 3;
    if (output.length !== 3 * n) throw new RangeError(`output has ${output.length} values for ${n} pixels`);
    const prevIn = this.previousInput;
    let prev = this.previous;
    if (prev && prevIn && !cut && this.strength > 0 && prev.length === output.length) {
      const d = this.pixelChanges(prevIn, input, changes);
      const weights = this.weights;
      // the previous output is updated in the same pass: one read and two writes per value
      for (let c = 0; c < 3; c++) {
        for (let i = 0, j = c * n; i < n; i++, j++) {
          const w = weights[d[i]];
          const v = w * prev[j] + (1 - w) * output[j];
          output[j] = v;
          prev[j] = output[j];
        }
      }
    } else {
      if (!prev || prev.length !== output.length) prev = this.previous = new Float32Array(output.length);
      prev.set(output);
    }
    this.previousInput = input;
  }

  /** `changes` when the caller measured them (checked), else frameChange into a buffer of this blend's. */
  private pixelChanges(prevIn: Uint8Array, input: Uint8Array, changes: Uint16Array | undefined): Uint16Array {
    const n = input.length / 3;
    if (changes) {
      if (changes.length !== n) throw new RangeError(`${changes.length} pixel changes for ${n} pixels`);
      return changes;
    }
    const d = this.changes?.length === n ? this.changes : (this.changes = new Uint16Array(n));
    frameChange(prevIn, input, d);
    return d;
  }

  /**
   * apply() and io.ts's toInterleavedU8 in one pass, for the video loop, where both ran once per
   * frame while the network waited: returns the blended frame as interleaved RGB bytes (the same
   * bytes as toInterleavedU8 after apply()). `output` receives the blended values too only when
   * `keepFloat` (someone looks at them); otherwise it is left as the network gave it.
   */
  applyToBytes(output: Float32Array, input: Uint8Array, cut: boolean, changes: Uint16Array | undefined, keepFloat: boolean): Uint8Array {
    const n = input.length / 3;
    const prevIn = this.previousInput;
    const prev = this.previous;
    if (!prev || !prevIn || cut || this.strength === 0 || prev.length !== output.length || output.length !== 3 * n) {
      this.apply(output, input, cut, changes);
      return toInterleavedU8({ width: n, height: 1, data: output });
    }
    const d = this.pixelChanges(prevIn, input, changes);
    const weights = this.weights;
    // the clamped store rounds as toInterleavedU8 does; fround gives the float32 value apply() would have stored
    const bytes = new Uint8ClampedArray(3 * n);
    const n2 = 2 * n;
    for (let i = 0, k = 0; i < n; i++, k += 3) {
      const w = weights[d[i]], u = 1 - w;
      const r = Math.fround(w * prev[i] + u * output[i]);
      const g = Math.fround(w * prev[n + i] + u * output[n + i]);
      const b = Math.fround(w * prev[n2 + i] + u * output[n2 + i]);
      prev[i] = r; prev[n + i] = g; prev[n2 + i] = b;
      bytes[k] = r * 255; bytes[k + 1] = g * 255; bytes[k + 2] = b * 255;
      if (keepFloat) { output[i] = r; output[n + i] = g; output[n2 + i] = b; }
    }
    this.previousInput = input;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }
}
