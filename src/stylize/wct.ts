import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { FeatureMap } from './features.js';

/**
 * The whitening and colouring transform (Li et al. 2017, "Universal Style Transfer"): the
 * content features are whitened with their own channel covariance and coloured with the
 * style's, so the target matches the style's full covariance instead of AdaIN's per-channel
 * mean and std (AdaIN is this transform with diagonal covariances). The decoder stays the
 * AdaIN one: the covariance is a richer style code from the same encoder, at the cost of
 * two symmetric eigendecompositions of a C x C matrix per image.
 */

/** Added to every eigenvalue before the inverse square root: a dead channel's zero variance stays finite. */
export const WCT_EPS = 1e-5;

/** Per-channel mean and the channel covariance (row-major c x c, population), in float64. */
export interface FeatureCovariance {
  mean: Float64Array | Float32Array;
  cov: Float64Array;
}

export function featureCovariance(f: FeatureMap): FeatureCovariance {
  const n = f.h * f.w, c = f.c;
  const mean = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    let s = 0;
    for (let k = i * n, end = k + n; k < end; k++) s += f.data[k];
    mean[i] = n ? s / n : 0;
  }
  // centred into float64 blocks of pixels: the c^2/2 dot products dominate, and a block bounds
  // the copy's memory on big images (tiled stylisation still takes the covariance of the whole map)
  const cov = new Float64Array(c * c);
  const block = Math.min(n, 4096), rows = new Float64Array(c * block);
  for (let p0 = 0; p0 < n; p0 += block) {
    const m = Math.min(block, n - p0);
    for (let i = 0; i < c; i++) for (let k = 0; k < m; k++) rows[i * block + k] = f.data[i * n + p0 + k] - mean[i];
    for (let i = 0; i < c; i++) {
      for (let j = i; j < c; j++) {
        let s = 0;
        for (let k = 0, a = i * block, b = j * block; k < m; k++) s += rows[a + k] * rows[b + k];
        cov[i * c + j] += s;
      }
    }
  }
  for (let i = 0; i < c; i++) for (let j = i; j < c; j++) cov[i * c + j] = cov[j * c + i] = n ? cov[i * c + j] / n : 0;
  return { mean, cov };
}

/** V diag((max(lambda, 0) + eps)^p) V^T of a symmetric matrix. */
export function symmetricPower(cov: Float64Array, c: number, p: number, eps = WCT_EPS): Float64Array {
  const rows = Array.from({ length: c }, (_, i) => Array.from(cov.subarray(i * c, (i + 1) * c)));
  const e = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const vals = e.realEigenvalues;
  // eigenvectors as rows of a flat array (vt[k*c+i] = V[i][k]): the c^3 loop below reads them contiguously
  const vt = new Float64Array(c * c);
  e.eigenvectorMatrix.to2DArray().forEach((row, i) => row.forEach((x, k) => { vt[k * c + i] = x; }));
  const out = new Float64Array(c * c);
  for (let k = 0; k < c; k++) {
    const w = (Math.max(vals[k], 0) + eps) ** p, vk = vt.subarray(k * c, (k + 1) * c);
    for (let i = 0; i < c; i++) {
      const vi = vk[i] * w;
      if (vi === 0) continue;
      for (let j = 0; j < c; j++) out[i * c + j] += vi * vk[j];
    }
  }
  return out;
}

/** A style's colouring matrix, once per covariance array: a cached style is reused on every frame or image. */
const colourings = new WeakMap<Float64Array, Float64Array>();
export function styleColouring(cov: Float64Array, c: number): Float64Array {
  let m = colourings.get(cov);
  if (!m) colourings.set(cov, (m = symmetricPower(cov, c, 0.5)));
  return m;
}

/**
 * out = alpha * (S^1/2 C^-1/2 (f - mean_c) + mean_s) + (1 - alpha) * f, with C and S the content's
 * and the style's covariances: the features then have the style's mean and covariance.
 */
export function wctInto(out: Float32Array, f: FeatureMap, content: FeatureCovariance, style: FeatureCovariance, alpha: number): void {
  const c = f.c, n = f.h * f.w;
  const whiten = symmetricPower(content.cov, c, -0.5), colour = styleColouring(style.cov, c);
  const t = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let k = 0; k < c; k++) {
      const a = colour[i * c + k];
      for (let j = 0; j < c; j++) t[i * c + j] += a * whiten[k * c + j];
    }
  }
  const x = new Float64Array(c);
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < c; j++) x[j] = f.data[j * n + p] - content.mean[j];
    for (let i = 0; i < c; i++) {
      let s = style.mean[i];
      for (let j = 0; j < c; j++) s += t[i * c + j] * x[j];
      out[i * n + p] = alpha * s + (1 - alpha) * f.data[i * n + p];
    }
  }
}
