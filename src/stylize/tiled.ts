import type { RgbImage } from '../image/io.js';
import type { Layer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import type { FeatureMap } from './features.js';

/**
 * Bytes of activations per input pixel at the hungriest layer (its padded input, input and
 * output alive together), used to size tiles from a memory budget.
 */
export function peakBytesPerPixel(layers: readonly Layer[], w: ConvWeights, inputScale = 1): number {
  let area = inputScale; // pixels of this layer's maps per input pixel
  let peak = 0;
  for (const l of layers) {
    if (l.kind === 'pool') area /= 4;
    else if (l.kind === 'up') area *= 4;
    else {
      const [cout, cin] = w.get(l.name)!.weight.shape;
      peak = Math.max(peak, area * 4 * (2 * cin + cout));
    }
  }
  return peak;
}

export interface TileRunner {
  /** Runs the network on one window (sides multiples of the alignment). */
  run(window: { y0: number; x0: number; h: number; w: number }): Promise<{ data: Float32Array; c: number; h: number; w: number }>;
}

/**
 * Runs a network over a large map in overlapping windows and stitches the window cores.
 * Coordinates are in input units; `scale` converts input units to output units (1/8 for an
 * encoder to relu4_1, 8 for its decoder). Windows and margins are multiples of `align` so
 * pooling grids line up with the whole-image computation; the margin hides tile edges.
 * When `signal` aborts, the run stops before the next tile (a tile in progress cannot be
 * interrupted) and rejects with the signal's reason.
 */
export async function runTiled(
  inH: number, inW: number, tile: number, margin: number, align: number, scale: number, outC: number,
  runner: TileRunner, onTile?: (done: number, total: number) => void, signal?: AbortSignal,
): Promise<FeatureMap> {
  const outH = Math.round(inH * scale), outW = Math.round(inW * scale);
  const out = new Float32Array(outC * outH * outW);
  const ys = starts(inH, tile), xs = starts(inW, tile);
  let done = 0;
  for (const y0 of ys) {
    for (const x0 of xs) {
      signal?.throwIfAborted();
      const cy1 = Math.min(y0 + tile, inH), cx1 = Math.min(x0 + tile, inW);
      const wy0 = Math.max(0, y0 - margin), wx0 = Math.max(0, x0 - margin);
      const wy1 = Math.min(inH, alignUp(cy1 + margin, align)), wx1 = Math.min(inW, alignUp(cx1 + margin, align));
      const r = await runner.run({ y0: wy0, x0: wx0, h: wy1 - wy0, w: wx1 - wx0 });
      // copy the core [y0,cy1) x [x0,cx1) from window-local output coordinates
      const oy0 = Math.round((y0 - wy0) * scale), ox0 = Math.round((x0 - wx0) * scale);
      const ch = Math.round((cy1 - y0) * scale), cw = Math.round((cx1 - x0) * scale);
      const gy = Math.round(y0 * scale), gx = Math.round(x0 * scale);
      for (let c = 0; c < outC; c++) {
        for (let y = 0; y < ch; y++) {
          const src = c * r.h * r.w + (oy0 + y) * r.w + ox0;
          out.set(r.data.subarray(src, src + cw), c * outH * outW + (gy + y) * outW + gx);
        }
      }
      onTile?.(++done, ys.length * xs.length);
    }
  }
  return { c: outC, h: outH, w: outW, data: out };
}

function starts(n: number, tile: number): number[] {
  const s: number[] = [];
  for (let i = 0; i < n; i += tile) s.push(i);
  return s;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function asImage(f: FeatureMap): RgbImage {
  return { width: f.w, height: f.h, data: f.data };
}
