// AdaIN arithmetic in the browser: the same formulas as src/stylize/features.ts and
// src/image/color.ts, on planar (CHW) Float32Arrays. No DOM, no onnxruntime.

/** Added to both variances inside the sqrt, as on the server. */
export const ADAIN_EPS = 1e-5;
const WHITENING_EPS = 1e-5;

/** Per-channel mean and population std of c planes of n values (sums in float64). */
export function channelStats(data, c, n) {
  const mean = new Float32Array(c), std = new Float32Array(c);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * n;
    let s = 0, s2 = 0;
    for (let i = 0; i < n; i++) { const v = data[base + i]; s += v; s2 += v * v; }
    const m = s / n;
    mean[ch] = m;
    std[ch] = Math.sqrt(Math.max(s2 / n - m * m, 0) + ADAIN_EPS);
  }
  return { mean, std };
}

/** Non-negative weights scaled to sum 1 (equal weights when all are zero). */
export function normaliseWeights(weights) {
  const sum = weights.reduce((a, b) => a + Math.max(0, b), 0);
  return sum > 0 ? weights.map((w) => Math.max(0, w) / sum) : weights.map(() => 1 / weights.length);
}

/** Weighted mix of style statistics (AdaIN targets mix linearly). */
export function mixStats(stats, weights) {
  const c = stats[0].mean.length;
  const w = normaliseWeights(weights);
  const mean = new Float32Array(c), std = new Float32Array(c);
  stats.forEach((s, k) => {
    for (let i = 0; i < c; i++) { mean[i] += w[k] * s.mean[i]; std[i] += w[k] * s.std[i]; }
  });
  return { mean, std };
}

/**
 * out = alpha * (std_s * (f - mean_c) / std_c + mean_s) + (1 - alpha) * f, per channel; `content`
 * may be passed when already known (it is cached per content image).
 */
export function adainInto(out, feats, c, n, style, alpha, content = channelStats(feats, c, n)) {
  for (let ch = 0; ch < c; ch++) {
    const scale = style.std[ch] / content.std[ch];
    const a = alpha * scale + (1 - alpha);
    const b = alpha * (style.mean[ch] - scale * content.mean[ch]);
    const base = ch * n;
    for (let i = 0; i < n; i++) out[base + i] = a * feats[base + i] + b;
  }
  return out;
}

function reflect(i, n) {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/** Reflect-pads c planes of h x w on the right and bottom to height x width. */
export function padPlanar(data, c, h, w, height, width) {
  if (height === h && width === w) return data;
  const out = new Float32Array(c * height * width);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < height; y++) {
      const src = ch * h * w + reflect(y, h) * w, dst = ch * height * width + y * width;
      for (let x = 0; x < width; x++) out[dst + x] = data[src + reflect(x, w)];
    }
  }
  return out;
}

/** The top-left height x width window of c planes of h x w. */
export function cropPlanar(data, c, h, w, height, width) {
  if (height === h && width === w) return data;
  const out = new Float32Array(c * height * width);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < height; y++) out.set(data.subarray(ch * h * w + y * w, ch * h * w + y * w + width), ch * height * width + y * width);
  }
  return out;
}

/** RGBA bytes (ImageData.data) to planar RGB floats in [0,1]. */
export function rgbaToPlanar(rgba, w, h, out = new Float32Array(3 * w * h)) {
  const n = w * h;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[i] = rgba[j] / 255;
    out[n + i] = rgba[j + 1] / 255;
    out[2 * n + i] = rgba[j + 2] / 255;
  }
  return out;
}

/** Planar RGB floats to RGBA bytes, clamped to [0,1] (NaN -> 0), alpha 255. */
export function planarToRgba(data, w, h, out = new Uint8ClampedArray(4 * w * h)) {
  const n = w * h;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    // Uint8ClampedArray clamps and rounds; NaN becomes 0
    out[j] = data[i] * 255;
    out[j + 1] = data[n + i] * 255;
    out[j + 2] = data[2 * n + i] * 255;
    out[j + 3] = 255;
  }
  return out;
}

// ---- colour preservation: the style takes the content's RGB mean and covariance ----

function colourStats(data, n) {
  const mean = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let i = c * n; i < (c + 1) * n; i++) s += data[i];
    mean[c] = s / n;
  }
  let rr = 0, rg = 0, rb = 0, gg = 0, gb = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const r = data[i] - mean[0], g = data[n + i] - mean[1], b = data[2 * n + i] - mean[2];
    rr += r * r; rg += r * g; rb += r * b; gg += g * g; gb += g * b; bb += b * b;
  }
  return { mean, cov: [rr / n, rg / n, rb / n, rg / n, gg / n, gb / n, rb / n, gb / n, bb / n] };
}

function mul(a, b) {
  const out = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
  return out;
}

/** Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations. */
function eigen3(m) {
  let a = m.slice();
  let v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const scale = Math.max(...a.map(Math.abs));
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = Math.abs(a[1]) + Math.abs(a[2]) + Math.abs(a[5]);
    if (off <= 1e-15 * scale || off === 0) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]]) {
      const apq = a[3 * p + q];
      if (apq === 0) continue;
      const theta = (a[3 * q + q] - a[3 * p + p]) / (2 * apq);
      const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      const j = [1, 0, 0, 0, 1, 0, 0, 0, 1];
      j[3 * p + p] = c; j[3 * q + q] = c; j[3 * p + q] = s; j[3 * q + p] = -s;
      const jt = [j[0], j[3], j[6], j[1], j[4], j[7], j[2], j[5], j[8]];
      a = mul(jt, mul(a, j));
      a[3 * p + q] = 0; a[3 * q + p] = 0;
      v = mul(v, j);
    }
  }
  return { values: [a[0], a[4], a[8]], vectors: v };
}

function symmetricFunction(m, f) {
  const { values, vectors: v } = eigen3(m);
  const fv = values.map(f);
  const out = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += v[3 * i + k] * fv[k] * v[3 * j + k];
    out[3 * i + j] = s;
  }
  return out;
}

/** The 3x3 matrix and offsets that give style pixels the content's colour statistics. */
export function colourTransfer(styleData, styleN, contentStats) {
  const s = colourStats(styleData, styleN);
  const cov = s.cov.slice();
  cov[0] += WHITENING_EPS; cov[4] += WHITENING_EPS; cov[8] += WHITENING_EPS;
  const whiten = symmetricFunction(cov, (l) => 1 / Math.sqrt(Math.max(l, WHITENING_EPS)));
  const colour = symmetricFunction(contentStats.cov, (l) => Math.sqrt(Math.max(l, 0)));
  return { t: mul(colour, whiten), styleMean: s.mean, contentMean: contentStats.mean };
}

export function contentColourStats(contentData, n) {
  return colourStats(contentData, n);
}

/** Recolours planar style pixels to the given content colour statistics (not clamped, as on the server). */
export function recolourStyle(styleData, styleN, contentStats) {
  const { t, styleMean: sm, contentMean: cm } = colourTransfer(styleData, styleN, contentStats);
  const n = styleN, d = styleData, out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const r = d[i] - sm[0], g = d[n + i] - sm[1], b = d[2 * n + i] - sm[2];
    out[i] = t[0] * r + t[1] * g + t[2] * b + cm[0];
    out[n + i] = t[3] * r + t[4] * g + t[5] * b + cm[1];
    out[2 * n + i] = t[6] * r + t[7] * g + t[8] * b + cm[2];
  }
  return out;
}

/** The style recoloured with the content image's colour statistics (src/image/color.ts preserveColor). */
export function preserveColor(styleData, styleN, contentData, contentN) {
  return recolourStyle(styleData, styleN, colourStats(contentData, contentN));
}
