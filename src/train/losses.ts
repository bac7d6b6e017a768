import { add, channelMean, channelStd, crop, mse, scale, sqrt, type Tape } from '../nn/backward.js';
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
 *   g(t) plus the same over B*3*H*(W-1) horizontally (the Lua trainer's TV term, as means).
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

export function pixelLoss(t: Tape, decoded: string, content: string): string {
  return mse(t, decoded, content);
}

/** sum_i weight_i * term_i. */
export function weightedSum(t: Tape, terms: readonly [value: string, weight: number][]): string {
  return add(t, terms.map(([v, w]) => (w === 1 ? v : scale(t, v, w))));
}
