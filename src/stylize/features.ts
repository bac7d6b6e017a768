/** A feature map of one image: channels x height x width, planar float32. */
export interface FeatureMap {
  c: number;
  h: number;
  w: number;
  data: Float32Array;
}

/** Per-channel mean and standard deviation: the style statistics AdaIN transfers. */
export interface ChannelStats {
  mean: Float32Array;
  std: Float32Array;
  /** The channel covariance (row-major c x c, population), for the wct transform (stylize/wct.ts); absent unless asked for. */
  cov?: Float64Array;
}

/** Added to both variances inside the sqrt (the seed omitted it on the style side: NaN on dead channels). */
export const ADAIN_EPS = 1e-5;

/**
 * Mean and population std over the pixels where `mask` is 1 (all pixels without a mask).
 * Accumulated in float64 because large maps sum millions of values.
 */
export function channelStats(f: FeatureMap, mask?: Uint8Array): ChannelStats {
  const n = f.h * f.w;
  const mean = new Float32Array(f.c);
  const std = new Float32Array(f.c);
  let count = n;
  if (mask) { count = 0; for (let i = 0; i < n; i++) count += mask[i]; }
  for (let ch = 0; ch < f.c; ch++) {
    const base = ch * n;
    let s = 0, s2 = 0;
    // two loops, not a mask test per value: this runs on every video frame
    if (mask) {
      for (let i = 0; i < n; i++) if (mask[i]) { const v = f.data[base + i]; s += v; s2 += v * v; }
    } else {
      for (let i = 0; i < n; i++) { const v = f.data[base + i]; s += v; s2 += v * v; }
    }
    const m = count ? s / count : 0;
    mean[ch] = m;
    std[ch] = Math.sqrt(Math.max(count ? s2 / count - m * m : 0, 0) + ADAIN_EPS);
  }
  return { mean, std };
}

/** Weighted mix of style statistics: mixing AdaIN targets is linear in (mean, std). */
export function mixStats(stats: readonly ChannelStats[], weights: readonly number[]): ChannelStats {
  const c = stats[0].mean.length;
  const mean = new Float32Array(c), std = new Float32Array(c);
  stats.forEach((s, k) => {
    for (let i = 0; i < c; i++) { mean[i] += weights[k] * s.mean[i]; std[i] += weights[k] * s.std[i]; }
  });
  if (!stats.every((s) => s.cov)) return { mean, std };
  // the covariance of the mixture's components, as AdaIN mixes their std: a weighted sum
  const cov = new Float64Array(c * c);
  stats.forEach((s, k) => { for (let i = 0; i < cov.length; i++) cov[i] += weights[k] * s.cov![i]; });
  return { mean, std, cov };
}

/**
 * AdaIN with the content/style trade-off, written into `out`:
 * out = alpha * (std_s * (f - mean_c) / std_c + mean_s) + (1 - alpha) * f, only where mask is 1.
 */
export function adainInto(out: Float32Array, f: FeatureMap, content: ChannelStats, style: ChannelStats, alpha: number, mask?: Uint8Array): void {
  const n = f.h * f.w;
  for (let ch = 0; ch < f.c; ch++) {
    const scale = style.std[ch] / content.std[ch];
    const a = alpha * scale + (1 - alpha);
    const b = alpha * (style.mean[ch] - scale * content.mean[ch]);
    const base = ch * n;
    if (mask) {
      for (let i = 0; i < n; i++) if (mask[i]) out[base + i] = a * f.data[base + i] + b;
    } else {
      for (let i = 0; i < n; i++) out[base + i] = a * f.data[base + i] + b;
    }
  }
}

export function adain(f: FeatureMap, style: ChannelStats, alpha = 1): FeatureMap {
  const data = new Float32Array(f.data.length);
  adainInto(data, f, channelStats(f), style, alpha);
  return { ...f, data };
}
