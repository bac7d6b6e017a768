import { add, channelMean, channelStd, conv, crop, matmulConst, mse, scale, sqrt, type Tape } from '../nn/backward.js';
import { ADAIN_EPS } from '../stylize/features.js';

/**
 * The decoder's training losses, as differentiable ops on a tape. Reductions (they set the
 * scale of the weights):
 * - content: mean over all B*C*h*w elements of (f(g(t)) - t)^2 at the AdaIN layer;
 * - style: sum over the style layers l of d(mu_l, mu_s,l) + d(sigma_l, sigma_s,l), where
 *   mu/sigma are the per-sample, per-channel mean and std over H*W (population variance,
 *   eps 1e-5 inside the sqrt, as in AdaIN) and d is the mean over the B*C_l entries of the
 *   squared difference ('mse', the paper's loss up to the 1/(B*C_l) factor, and the PyTorch
 *   port's) or its square root ('rms', the seed's euclidean variant);
 * - pixel: mean over all B*3*H*W elements of (g(t) - c)^2;
 * - total variation: mean over B*3*(H-1)*W of the squared vertical neighbour differences of
 *   g(t) plus the same over B*3*H*(W-1) horizontally (the Lua trainer's TV term, as means);
 * - grid: the energy of the decoded luminance at the decoder's upsampling periods (see
 *   gridLoss), the differentiable twin of eval's grid_score.
 */
export type StyleLossKind = 'mse' | 'rms';

/** One style layer: the decoded image's features there and the style image's statistics [B,C]. */
export interface StyleTerm { features: string; mean: string; std: string }

export function contentLoss(t: Tape, features: string, target: string): string {
  return mse(t, features, target);
}

export function styleLoss(t: Tape, layers: readonly StyleTerm[], kind: StyleLossKind): string {
  const distance = (a: string, b: string) => (kind === 'rms' ? sqrt(t, mse(t, a, b)) : mse(t, a, b));
  return add(t, layers.flatMap((l) => [
    distance(channelMean(t, l.features), l.mean),
    distance(channelStd(t, l.features, ADAIN_EPS), l.std),
  ]));
}

/** Squared differences of neighbouring pixels; penalises the high-frequency grid a decoder can leave. */
export function totalVariationLoss(t: Tape, image: string): string {
  const [, , h, w] = t.shape(image);
  const along = (axis: number, size: number) => mse(t, crop(t, image, axis, 1, size), crop(t, image, axis, 0, size - 1));
  return add(t, [along(2, h), along(3, w)]);
}

/** The periods a decoder with three nearest 2x upsamplings can leave a pattern at. */
export const GRID_PERIODS = [2, 4, 8] as const;

/**
 * The luminance's power at frequency N/p along x (each row) and along y (each column), for
 * p in GRID_PERIODS: each line, Hann-windowed, projected on the cosine and sine of that frequency, squared
 * and averaged over lines. The
 * grid a decoder leaves is phase-locked to the pixel grid, so it adds up in these bins over
 * every line, where a photo's own content spreads over all frequencies. A pattern's mean
 * square adds to the loss (A^2 / 2 for A cos(2 pi x / p), A^2 at p = 2).
 */
export function gridLoss(t: Tape, image: string): string {
  const g = t.g;
  const [, c, h, w] = t.shape(image);
  if (c !== 3) throw new Error(`gridLoss: expected an RGB image, got ${c} channels`);
  const lumaW = t.constant(g.initializer('luma', { shape: [1, 3, 1, 1], data: new Float32Array([0.299, 0.587, 0.114]) }), [1, 3, 1, 1]);
  const luma = conv(t, image, lumaW, t.constant(g.float([0], [1]), [1]));
  const zero = t.constant(g.float([0], []), []);
  const terms: string[] = [];
  for (const [len, side] of [[w, 'right'], [h, 'left']] as const) {
    for (const p of GRID_PERIODS) {
      if (len % p !== 0 || len < 2 * p) continue;
      const basis = new Float32Array(2 * len);
      for (let i = 0; i < len; i++) {
        const phase = (2 * Math.PI * i) / p;
        // a Hann window: without it the jump between a line's two ends (a ramp, a sky above a
        // field) leaks into every bin and the loss would fight the image's edges
        const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / len);
        // right: M [len, 2] (row-major); left: M [2, len]
        if (side === 'right') { basis[2 * i] = hann * Math.cos(phase); basis[2 * i + 1] = hann * Math.sin(phase); } else { basis[i] = hann * Math.cos(phase); basis[len + i] = hann * Math.sin(phase); }
      }
      const m = side === 'right' ? { rows: len, cols: 2, data: basis } : { rows: 2, cols: len, data: basis };
      // windowed, c = A len / 4 for a cosine of amplitude A (A len / 2 at p = 2, where
      // cos^2 = 1); the mean over the cosine and sine coefficients then scales to the
      // pattern's mean square
      const factor = (p === 2 ? 8 : 16) / (len * len);
      terms.push(scale(t, mse(t, matmulConst(t, luma, m, side), zero), factor));
    }
  }
  return add(t, terms);
}

export function pixelLoss(t: Tape, decoded: string, content: string): string {
  return mse(t, decoded, content);
}

/** sum_i weight_i * term_i. */
export function weightedSum(t: Tape, terms: readonly [value: string, weight: number][]): string {
  return add(t, terms.map(([v, w]) => (w === 1 ? v : scale(t, v, w))));
}
