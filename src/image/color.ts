import type { RgbImage } from './io.js';

/** A 3x3 matrix, row-major. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/**
 * Added to the style covariance's diagonal before whitening: about ten times the variance of
 * 8-bit quantisation noise ((1/255)^2 / 12), so a direction in which the style has no real
 * colour variation (a grey or flat image) is not amplified from rounding noise.
 */
const WHITENING_EPS = 1e-5;

interface ColourStats {
  mean: [number, number, number];
  cov: Mat3;
}

/** Per-channel mean and population covariance of an image's RGB values, in float64. */
function colourStats(img: RgbImage): ColourStats {
  const n = img.width * img.height;
  if (n < 1 || img.data.length !== 3 * n) {
    throw new RangeError(`image data has ${img.data.length} values, ${img.width}x${img.height} RGB needs ${3 * n}`);
  }
  const d = img.data;
  const mean: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let i = c * n; i < (c + 1) * n; i++) s += d[i];
    mean[c] = s / n;
  }
  // Second pass on centred values: summing raw squares loses precision for large images.
  let rr = 0, rg = 0, rb = 0, gg = 0, gb = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const r = d[i] - mean[0];
    const g = d[n + i] - mean[1];
    const b = d[2 * n + i] - mean[2];
    rr += r * r; rg += r * g; rb += r * b;
    gg += g * g; gb += g * b; bb += b * b;
  }
  const cov: Mat3 = [rr / n, rg / n, rb / n, rg / n, gg / n, gb / n, rb / n, gb / n, bb / n];
  return { mean, cov };
}

function multiply(a: Mat3, b: Mat3): Mat3 {
  const out = new Array<number>(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    }
  }
  return out;
}

/**
 * Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations: m = V diag(values) V^T,
 * with the eigenvectors in the columns of V. Jacobi keeps V orthogonal to rounding error even
 * for nearly equal eigenvalues, which a closed-form cubic solution does not.
 */
export function symmetricEigen3(m: Mat3): { values: [number, number, number]; vectors: Mat3 } {
  const a = m.slice() as Mat3;
  let v: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const scale = Math.max(...a.map(Math.abs));
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = Math.abs(a[1]) + Math.abs(a[2]) + Math.abs(a[5]);
    if (off <= 1e-15 * scale || off === 0) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]] as const) {
      const apq = a[3 * p + q];
      if (apq === 0) continue;
      // Rotation angle that zeroes a[p][q] (Numerical Recipes, section 11.1), smaller root for stability.
      const theta = (a[3 * q + q] - a[3 * p + p]) / (2 * apq);
      const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      const j: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
      j[3 * p + p] = c;
      j[3 * q + q] = c;
      j[3 * p + q] = s;
      j[3 * q + p] = -s;
      const jt: Mat3 = [j[0], j[3], j[6], j[1], j[4], j[7], j[2], j[5], j[8]];
      const rotated = multiply(jt, multiply(a, j));
      rotated[3 * p + q] = 0; // exact by construction; drop the rounding residue
      rotated[3 * q + p] = 0;
      a.splice(0, 9, ...rotated);
      v = multiply(v, j);
    }
  }
  return { values: [a[0], a[4], a[8]], vectors: v };
}

/** V diag(f(values)) V^T for a symmetric matrix: a function applied to its eigenvalues. */
function symmetricFunction(m: Mat3, f: (eigenvalue: number) => number): Mat3 {
  const { values, vectors: v } = symmetricEigen3(m);
  const fv = values.map(f);
  const out = new Array<number>(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += v[3 * i + k] * fv[k] * v[3 * j + k];
      out[3 * i + j] = s;
    }
  }
  return out;
}

/**
 * Recolours the style image so that its RGB values have the mean and covariance of the content
 * image's ("coral", the colour-preservation option of the original AdaIN): whiten the centred
 * style pixels with (cov_style + eps I)^(-1/2), colour them with cov_content^(1/2), add the
 * content mean. The style keeps its textures and strokes but takes on the content's palette.
 * Values are not clamped, because clamping would shift the statistics just matched; they may
 * fall slightly outside [0,1], which the encoder accepts (the original does not clamp either).
 */
export function preserveColor(style: RgbImage, content: RgbImage): RgbImage {
  const s = colourStats(style);
  const c = colourStats(content);
  const withEps = s.cov.slice() as Mat3;
  withEps[0] += WHITENING_EPS;
  withEps[4] += WHITENING_EPS;
  withEps[8] += WHITENING_EPS;
  const whiten = symmetricFunction(withEps, (l) => 1 / Math.sqrt(Math.max(l, WHITENING_EPS)));
  // Rounding can make a zero eigenvalue slightly negative; its square root is 0.
  const colour = symmetricFunction(c.cov, (l) => Math.sqrt(Math.max(l, 0)));
  const t = multiply(colour, whiten);

  const n = style.width * style.height;
  const d = style.data;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const r = d[i] - s.mean[0];
    const g = d[n + i] - s.mean[1];
    const b = d[2 * n + i] - s.mean[2];
    out[i] = t[0] * r + t[1] * g + t[2] * b + c.mean[0];
    out[n + i] = t[3] * r + t[4] * g + t[5] * b + c.mean[1];
    out[2 * n + i] = t[6] * r + t[7] * g + t[8] * b + c.mean[2];
  }
  return { width: style.width, height: style.height, data: out };
}
