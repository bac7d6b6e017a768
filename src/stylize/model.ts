import { UserError } from '../errors.js';
import { preserveColor } from '../image/color.js';
import type { RgbImage } from '../image/io.js';
import { cropImage, cropPlanar, padPlanar, roundUp } from '../image/pad.js';
import { adainInto, channelStats, mixStats, type ChannelStats, type FeatureMap } from './features.js';
import type { Network } from './network.js';
import { asImage, runTiled } from './tiled.js';

/** How the content features take the style: adain (per-channel mean and std) or wct (the full channel covariance, stylize/wct.ts). */
export type FeatureTransform = 'adain' | 'wct';
export const FEATURE_TRANSFORMS: readonly FeatureTransform[] = ['adain', 'wct'];

export interface StylizeOptions {
  /** Content/style trade-off in [0, 1]; 1 = full style (default). */
  alpha?: number;
  /** One weight per style for style interpolation; normalised to sum 1. Default: equal. */
  styleWeights?: number[];
  /** Give the style images the content's colour statistics first (mean/covariance matching). */
  preserveColor?: boolean;
  /** Spatial control with exactly two styles: 1 = style 1, 0 = style 2; content width*height values. */
  mask?: Float32Array;
  /** Memory budget in bytes for the stylisation of one image (default 4 GB); larger images go in tiles. */
  memoryBudget?: number;
  /** Force tiling with this tile side in pixels (a multiple of factor^2); default: from the memory budget. */
  tileSize?: number;
  /** Called as tiles complete on large images. */
  onTile?: (stage: 'encode' | 'decode', done: number, total: number) => void;
  /**
   * Stops the work at the next tile or stage boundary (onnxruntime cannot interrupt a run),
   * rejecting with the signal's reason, so that nobody waits on a result no one wants.
   */
  signal?: AbortSignal;
  /**
   * Replaces the content statistics AdaIN normalises with, given those measured on this image:
   * video smooths them across frames so that the normalisation does not flicker. Not used with a mask.
   */
  contentStats?: (measured: ChannelStats) => ChannelStats;
  /** adain (default) or wct: match the style's channel covariance, not only its per-channel mean and std. */
  transform?: FeatureTransform;
}

export const DEFAULT_MEMORY_BUDGET = 4 * 1024 ** 3;
/** Node, onnxruntime and the weights, outside what the per-image estimate counts. */
const BASE_OVERHEAD = 400 * 1024 ** 2;
/** onnxruntime's arena and scratch buffers take about this much beyond the live activations. */
const ARENA_SAFETY = 2;
const MAX_TILE = 1024;

export interface StylizeReport {
  tiles: number;
}

/** Validates and normalises the style weights. */
export function normaliseWeights(n: number, weights?: number[]): number[] {
  if (!weights) return Array(n).fill(1 / n);
  if (weights.length !== n) throw new UserError(`--style-weights has ${weights.length} values for ${n} styles; give one weight per style`);
  if (weights.some((w) => !(w >= 0))) throw new UserError(`--style-weights must be non-negative numbers, got ${weights.join(',')}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) throw new UserError('--style-weights must not all be zero');
  return weights.map((w) => w / sum);
}

export function checkAlpha(alpha: number): number {
  if (!(alpha >= 0 && alpha <= 1)) throw new UserError(`--alpha must be between 0 and 1, got ${alpha}`);
  return alpha;
}

/** Style statistics of one style image at the network's cut layer (float encoder in int8 too: Network.encodeStyle). */
export async function styleStats(net: Network, style: RgbImage, transform: FeatureTransform = 'adain'): Promise<ChannelStats> {
  const f = await net.encodeStyle(style);
  const stats = channelStats(f);
  // the covariance through the same onnxruntime GEMM as the content's: in JS it was seconds for vgg19-r31 at 512
  return transform === 'wct' ? { ...stats, cov: (await (await net.wct()).covariance(f)).cov } : stats;
}

export function checkTransform(t: string): FeatureTransform {
  if (!(FEATURE_TRANSFORMS as readonly string[]).includes(t)) throw new UserError(`--transform must be one of ${FEATURE_TRANSFORMS.join(', ')}, got ${JSON.stringify(t)}`);
  return t as FeatureTransform;
}

/**
 * Stylises one content image. Style statistics may be passed precomputed (reused across a
 * directory of contents) unless colours are preserved, which changes the style per content.
 */
export async function stylizeImage(net: Network, content: RgbImage, styles: (RgbImage | ChannelStats)[], opts: StylizeOptions = {}): Promise<RgbImage> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const alpha = checkAlpha(opts.alpha ?? 1);
  if (styles.length === 0) throw new UserError('no style image given; pass --style FILE');
  if (opts.mask && styles.length !== 2) throw new UserError(`--mask needs exactly two styles (white = style 1, black = style 2), got ${styles.length}`);
  const weights = normaliseWeights(styles.length, opts.styleWeights);
  const transform = checkTransform(opts.transform ?? 'adain');
  if (transform === 'wct' && (opts.mask || opts.contentStats)) throw new UserError(`--transform wct does not combine with ${opts.mask ? '--mask' : 'video (its temporal smoothing is of AdaIN\'s statistics)'}; use --transform adain`);
  const stats: ChannelStats[] = [];
  for (const s of styles) {
    if ('mean' in s) {
      if (transform === 'wct' && !s.cov) throw new UserError('--transform wct needs the style\'s channel covariance; compute its statistics with styleStats(..., \'wct\')');
      stats.push(s);
    } else stats.push(await styleStats(net, opts.preserveColor ? preserveColor(s, content) : s, transform));
    signal?.throwIfAborted();
  }

  const f = net.factor;
  // reflection padding inside the network needs maps of at least 2 pixels at the cut layer
  const H = Math.max(roundUp(content.height, f), 2 * f), W = Math.max(roundUp(content.width, f), 2 * f);
  const padded: RgbImage = { width: W, height: H, data: padPlanar(content.data, 3, content.height, content.width, H, W) };
  const plan = opts.tileSize ? { tile: checkTile(opts.tileSize, f), margin: 4 * f } : planTiles(net, H, W, opts.memoryBudget ?? DEFAULT_MEMORY_BUDGET);

  const feats = plan.tile
    ? await runTiled(H, W, plan.tile, plan.margin, f, 1 / f, net.channels, {
      run: (win) => net.encode({ width: win.w, height: win.h, data: cropPlanar(padded.data, 3, H, W, win.y0, win.x0, win.h, win.w) }).then((r) => ({ ...r })),
    }, (d, t) => opts.onTile?.('encode', d, t), signal)
    : await net.encode(padded);
  signal?.throwIfAborted();

  let target: Float32Array = new Float32Array(feats.data.length);
  if (opts.mask) {
    const masks = featureMasks(opts.mask, content, H, W, feats);
    masks.forEach((m, k) => adainInto(target, feats, channelStats(feats, m), stats[k], alpha, m));
  } else if (transform === 'wct') {
    const style = mixStats(stats, weights), wct = await net.wct();
    target = (await wct.transform(feats, await wct.covariance(feats), { mean: style.mean, cov: style.cov! }, alpha)).data;
  } else {
    const measured = channelStats(feats);
    adainInto(target, feats, opts.contentStats?.(measured) ?? measured, mixStats(stats, weights), alpha);
  }
  const t: FeatureMap = { ...feats, data: target };
  signal?.throwIfAborted();

  const out = plan.tile
    ? asImage(await runTiled(t.h, t.w, plan.tile / f, plan.margin / f, 1, f, 3, {
      run: (win) => net.decode({ c: t.c, h: win.h, w: win.w, data: cropPlanar(t.data, t.c, t.h, t.w, win.y0, win.x0, win.h, win.w) })
        .then((img) => ({ c: 3, h: img.height, w: img.width, data: img.data })),
    }, (d, n) => opts.onTile?.('decode', d, n), signal))
    : await net.decode(t);
  signal?.throwIfAborted();
  return cropImage(out, content.width, content.height);
}

/**
 * Whole image in one pass when it fits the budget, else square tiles (a multiple of the
 * alignment the decoder needs too) with a margin wide enough that no seams show.
 */
export function planTiles(net: Network, H: number, W: number, budget: number): { tile: number; margin: number } {
  const f = net.factor;
  const featBytes = (H / f) * (W / f) * net.channels * 4;
  const fixed = BASE_OVERHEAD + H * W * 3 * 4 * 3 + featBytes * 3;
  const perPixel = ARENA_SAFETY * Math.max(net.encoderBytesPerPixel, net.decoderBytesPerPixel / (f * f));
  const free = budget - fixed;
  if (free <= 0) throw new UserError(`a ${W}x${H} image needs more than the ${fmtGB(budget)} memory budget just for its buffers; raise --memory-budget or use --max-size`);
  if (H * W * perPixel <= free) return { tile: 0, margin: 0 };
  const margin = 4 * f;
  const side = Math.floor(Math.sqrt(free / perPixel)) - 2 * margin;
  // decoder tiles are tile/f feature pixels: keep them aligned too. Tiles past ~1024 px only
  // get slower (cache misses), so a large budget does not mean large tiles.
  const tile = Math.floor(Math.min(side, MAX_TILE) / (f * f)) * f * f;
  if (tile < f * f) throw new UserError(`the ${fmtGB(budget)} memory budget is too small to stylise in tiles; raise --memory-budget`);
  return { tile, margin };
}

function checkTile(tile: number, f: number): number {
  if (!(tile > 0 && tile % (f * f) === 0)) throw new UserError(`tile size ${tile} must be a positive multiple of ${f * f} for this model`);
  return tile;
}

function fmtGB(b: number): string {
  return `${(b / 1024 ** 3).toFixed(1)} GB`;
}

/** The mask at feature resolution as two complementary 0/1 maps (style 1 region, style 2 region). */
function featureMasks(mask: Float32Array, content: RgbImage, H: number, W: number, feats: FeatureMap): [Uint8Array, Uint8Array] {
  const m = padPlanar(mask, 1, content.height, content.width, H, W);
  const f = H / feats.h;
  const fg = new Uint8Array(feats.h * feats.w), bg = new Uint8Array(feats.h * feats.w);
  for (let y = 0; y < feats.h; y++) {
    for (let x = 0; x < feats.w; x++) {
      let s = 0;
      for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += m[(y * f + dy) * W + x * f + dx];
      const on = s / (f * f) >= 0.5 ? 1 : 0;
      fg[y * feats.w + x] = on; bg[y * feats.w + x] = 1 - on;
    }
  }
  return [fg, bg];
}
