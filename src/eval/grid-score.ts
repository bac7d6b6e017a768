import type { RgbImage } from '../image/io.js';

/**
 * `grid_score`: periodic energy at a decoder's upsampling periods that the inputs do not have.
 *
 * A decoder that upsamples by nearest 2x three times can leave a pattern repeating every 2, 4
 * or 8 pixels. In the luminance's power spectrum, taken along x (averaged over rows) and along
 * y (over columns), such a pattern is a narrow peak at the frequency bin N/p. For each axis
 * and period p in PERIODS: peak = log2 of the power at bin N/p over the median power of the
 * PEAK_NEIGHBOURS bins on each side (the local spectral floor), clamped at 0. An image's
 * periodicity is the sum of those peaks; grid_score = max(0, periodicity(output) -
 * max(periodicity(content), periodicity(style))), so a grid the content or painting already
 * had (a tiled texture, a fabric) does not count against the model. 0: no grid beyond the
 * inputs'; every doubling of a period's peak power over its floor adds 1.
 */
export const PERIODS = [2, 4, 8] as const;
export const PEAK_NEIGHBOURS = 4;

/** Luminance (Rec. 601) of a planar RGB image, values clamped to [0,1] as a viewer sees them. */
function luminance(img: RgbImage): Float64Array {
  const n = img.width * img.height;
  const y = new Float64Array(n);
  const clamp = (v: number) => (v > 0 ? (v < 1 ? v : 1) : 0);
  for (let i = 0; i < n; i++) y[i] = 0.299 * clamp(img.data[i]) + 0.587 * clamp(img.data[n + i]) + 0.114 * clamp(img.data[2 * n + i]);
  return y;
}

/**
 * Mean power over `lines` of the DFT of each line (length `len`, mean removed) at the given
 * bins; element (line, t) of the signal is data[line * lineStride + t * step].
 */
function linePower(data: Float64Array, lines: number, len: number, lineStride: number, step: number, bins: number[]): Map<number, number> {
  const cos = bins.map((k) => basis(len, k, Math.cos));
  const sin = bins.map((k) => basis(len, k, Math.sin));
  const power = new Float64Array(bins.length);
  const line = new Float64Array(len);
  for (let l = 0; l < lines; l++) {
    let mean = 0;
    for (let t = 0; t < len; t++) mean += (line[t] = data[l * lineStride + t * step]);
    mean /= len;
    for (let b = 0; b < bins.length; b++) {
      let re = 0, im = 0;
      const c = cos[b], s = sin[b];
      for (let t = 0; t < len; t++) {
        const v = line[t] - mean;
        re += v * c[t];
        im += v * s[t];
      }
      power[b] += re * re + im * im;
    }
  }
  return new Map(bins.map((k, b) => [k, power[b] / lines]));
}

const bases = new Map<string, Float64Array>();

/** cos or sin of bin k over a line of `len`, built once per size: every image of an evaluation shares them. */
function basis(len: number, k: number, f: typeof Math.cos): Float64Array {
  const key = `${f.name}:${len}:${k}`;
  let b = bases.get(key);
  if (!b) bases.set(key, (b = Float64Array.from({ length: len }, (_, t) => f((2 * Math.PI * k * t) / len))));
  return b;
}

/** Sum over both axes and PERIODS of log2(power at N/p / median of the neighbouring bins), each clamped at 0. */
export function periodicity(img: RgbImage): number {
  const y = luminance(img);
  const { width: w, height: h } = img;
  let total = 0;
  for (const [len, lines, lineStride, step] of [[w, h, w, 1], [h, w, 1, w]] as const) {
    for (const p of PERIODS) {
      if (len % p !== 0 || len < 4 * PEAK_NEIGHBOURS * p) continue;
      const k = len / p;
      const around: number[] = [];
      for (let d = 1; d <= PEAK_NEIGHBOURS; d++) {
        around.push(k - d);
        if (k + d <= len / 2) around.push(k + d);
      }
      const power = linePower(y, lines, len, lineStride, step, [k, ...around]);
      const floor = median(around.map((b) => power.get(b)!));
      total += Math.max(0, Math.log2((power.get(k)! + 1e-12) / (floor + 1e-12)));
    }
  }
  return total;
}

/** The output's periodicity in excess of the more periodic of its two inputs (see the module comment). */
export function gridScore(output: RgbImage, content: number | RgbImage, style: number | RgbImage): number {
  const of = (x: number | RgbImage) => (typeof x === 'number' ? x : periodicity(x));
  return Math.max(0, periodicity(output) - Math.max(of(content), of(style)));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
