import type * as ort from 'onnxruntime-node';
import { UserError } from '../errors.js';
import type { RgbImage } from '../image/io.js';
import { encoderLayers, type ConvLayer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import { conv, maxPool2, reflectPad, relu, Tape } from '../nn/backward.js';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor, type RuntimeOptions } from '../runtime/session.js';
import type { FeatureMap } from '../stylize/features.js';
import { Adam } from '../train/adam.js';
import { contentLoss, styleLoss, weightedSum } from '../train/losses.js';
import { JUDGE_CONTENT_LAYER, JUDGE_LAYERS, type StyleTarget } from './judge.js';

/**
 * Optimisation-based style transfer (Gatys et al. 2016) with the judge network: the image
 * itself is the parameter. One static-shape ONNX graph computes
 *
 *   loss = contentWeight * mean((f3(x) - f3(c))^2) + styleWeight * sum_{l in relu1_1..relu3_1}
 *          [mean_c (mu_l(x) - mu_l(s))^2 + mean_c (sigma_l(x) - sigma_l(s))^2]
 *
 * (exactly the judge's two distances, weighted as in training: content 1, style 10) and its
 * gradient with respect to the pixels, with the project's reverse-mode Tape (nn/backward.ts).
 * Adam then updates the pixels in JS and clamps them to [0,1] after every step, starting
 * from the content image.
 *
 * Graph inputs:  `image` [1,3,H,W]; `content_target` [1,C3,H/4,W/4] (relu3_1 of the content);
 *                `style_mean_<layer>`, `style_std_<layer>` [1,C_l] for relu1_1..relu3_1.
 * Graph outputs: `loss`, `content_loss`, `style_loss` (scalars), `grad` [1,3,H,W].
 */
export interface OptimizeGraphSpec {
  /** The judge's normalised VGG-19 weights up to conv3_1 (canonical names, conv0 included). */
  weights: ConvWeights;
  /** Multiples of 4 (two max-poolings with exact backward), at least 8. */
  height: number;
  width: number;
  contentWeight: number;
  styleWeight: number;
}

export const OPTIMIZE_OPSET = 13;
/** Tuned on 2 test pairs at 256: after 100 steps lr 0.01 / 0.02 / 0.05 gave losses 16.1 / 14.1 / 12.9 and 7.9 / 7.4 / 7.1 (from 260 and 120). */
export const DEFAULT_OPTIMIZE_LR = 0.05;
export const DEFAULT_OPTIMIZE_STYLE_WEIGHT = 10;
export const DEFAULT_OPTIMIZE_CONTENT_WEIGHT = 1;

export function optimizeModel(spec: OptimizeGraphSpec): Uint8Array {
  const { height: h, width: w } = spec;
  checkOptimizeSize(w, h);
  const g = new Graph('gatys_optimize');
  const t = new Tape(g);
  const image = t.input('image', [1, 3, h, w], true);

  const taps = new Map<string, string>();
  let x = image;
  for (const l of encoderLayers(JUDGE_CONTENT_LAYER, true)) {
    if (l.kind === 'pool') { x = maxPool2(t, x); continue; }
    if (l.kind === 'up') throw new Error('optimisation graph: no upsampling in an encoder');
    const p = spec.weights.get(l.name);
    if (!p) throw new UserError(`optimisation graph: the judge's weights have no layer '${l.name}'`);
    const wt = t.constant(g.initializer(`${l.name}.weight`, p.weight), p.weight.shape);
    const b = t.constant(g.initializer(`${l.name}.bias`, p.bias), p.bias.shape);
    x = conv(t, l.k === 3 ? reflectPad(t, x) : x, wt, b);
    if (l.relu) x = relu(t, x);
    if (l.tap) taps.set(l.tap, x);
  }

  const f3 = taps.get(JUDGE_CONTENT_LAYER)!;
  const content = contentLoss(t, f3, t.input('content_target', [...t.shape(f3)]));
  const style = styleLoss(t, JUDGE_LAYERS.map((layer) => {
    const c = t.shape(taps.get(layer)!)[1];
    return { features: taps.get(layer)!, mean: t.input(`style_mean_${layer}`, [1, c]), std: t.input(`style_std_${layer}`, [1, c]) };
  }), 'mse');
  const loss = weightedSum(t, [[content, spec.contentWeight], [style, spec.styleWeight]]);
  const grad = t.backward(loss, g.float([1], [])).get(image)!;
  g.output(loss, 'loss', []);
  g.output(content, 'content_loss', []);
  g.output(style, 'style_loss', []);
  g.output(grad, 'grad', [1, 3, h, w]);
  return g.toModel(OPTIMIZE_OPSET, { method: 'gatys', contentWeight: String(spec.contentWeight), styleWeight: String(spec.styleWeight) });
}

export function checkOptimizeSize(width: number, height: number): void {
  for (const [label, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v % 4 !== 0 || v < 8) throw new UserError(`optimisation needs an image ${label} that is a multiple of 4 and at least 8, got ${v}`);
  }
}

/** The largest multiple of 4 not above n (at least 8). */
export function optimizeSide(n: number): number {
  return Math.max(8, Math.floor(n / 4) * 4);
}

export interface LossValues { loss: number; content: number; style: number }

export interface OptimizeRunOptions {
  iterations: number;
  /** Adam learning rate on pixel values in [0,1] (default DEFAULT_OPTIMIZE_LR). */
  lr?: number;
  /** Also return the image after these iteration counts (e.g. [100] on the way to 300). */
  snapshots?: readonly number[];
  /** Called after each iteration with its number (1-based) and the loss before its update. */
  onIteration?: (iteration: number, loss: LossValues) => void;
}

export interface OptimizeResult {
  image: RgbImage;
  snapshots: Map<number, RgbImage>;
  /** The loss before each update (losses[0]: the starting image). */
  losses: LossValues[];
  /** Mean wall time of one iteration (graph run + Adam step). */
  msPerIteration: number;
}

/** One optimisation session of a fixed image size; run() as many pairs of that size as needed. */
export class GatysOptimizer {
  private constructor(private readonly session: ort.InferenceSession, readonly width: number, readonly height: number) {}

  static async create(spec: OptimizeGraphSpec, opts: RuntimeOptions = {}): Promise<GatysOptimizer> {
    return new GatysOptimizer(await createSession(optimizeModel(spec), opts), spec.width, spec.height);
  }

  /** Loss and gradient at `image` [3,H,W] planar. */
  async evaluate(image: Float32Array, feeds: Record<string, ort.Tensor>): Promise<{ loss: LossValues; grad: Float32Array }> {
    const out = await this.session.run({ ...feeds, image: floatTensor(image, [1, 3, this.height, this.width]) });
    const scalar = (k: string) => (out[k].data as Float32Array)[0];
    return { loss: { loss: scalar('loss'), content: scalar('content_loss'), style: scalar('style_loss') }, grad: out.grad.data as Float32Array };
  }

  /** The fixed inputs for one content/style pair. */
  targets(contentTarget: FeatureMap, style: StyleTarget): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { content_target: floatTensor(contentTarget.data, [1, contentTarget.c, contentTarget.h, contentTarget.w]) };
    JUDGE_LAYERS.forEach((layer, i) => {
      feeds[`style_mean_${layer}`] = floatTensor(style[i].mean, [1, style[i].mean.length]);
      feeds[`style_std_${layer}`] = floatTensor(style[i].std, [1, style[i].std.length]);
    });
    return feeds;
  }

  /** Starts from `start` (the content image) and takes `iterations` Adam steps on the pixels, clamping to [0,1]. */
  async run(start: RgbImage, contentTarget: FeatureMap, style: StyleTarget, opts: OptimizeRunOptions): Promise<OptimizeResult> {
    if (start.width !== this.width || start.height !== this.height) {
      throw new Error(`optimiser built for ${this.width}x${this.height}, got an image of ${start.width}x${start.height}`);
    }
    if (!Number.isInteger(opts.iterations) || opts.iterations < 0) throw new RangeError(`iterations must be a non-negative integer, got ${opts.iterations}`);
    const lr = opts.lr ?? DEFAULT_OPTIMIZE_LR;
    const feeds = this.targets(contentTarget, style);
    const x = Float32Array.from(start.data, (v) => (v > 0 ? (v < 1 ? v : 1) : 0));
    const adam = new Adam(new Map([['image', x]]));
    const snapshots = new Map<number, RgbImage>();
    const wanted = new Set(opts.snapshots ?? []);
    const losses: LossValues[] = [];
    const snap = () => ({ width: this.width, height: this.height, data: x.slice() });
    if (wanted.has(0)) snapshots.set(0, snap());
    const t0 = performance.now();
    for (let i = 1; i <= opts.iterations; i++) {
      const { loss, grad } = await this.evaluate(x, feeds);
      if (!Number.isFinite(loss.loss)) throw new Error(`optimisation diverged at iteration ${i} (loss ${loss.loss}); lower the learning rate`);
      losses.push(loss);
      adam.step(new Map([['image', grad]]), lr);
      for (let k = 0; k < x.length; k++) x[k] = x[k] > 0 ? (x[k] < 1 ? x[k] : 1) : 0;
      if (wanted.has(i)) snapshots.set(i, snap());
      opts.onIteration?.(i, loss);
    }
    const msPerIteration = opts.iterations ? (performance.now() - t0) / opts.iterations : 0;
    return { image: snap(), snapshots, losses, msPerIteration };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** Names the conv layers the optimisation graph reads (for checks and messages). */
export function optimizeLayers(): string[] {
  return encoderLayers(JUDGE_CONTENT_LAYER, true).filter((l): l is ConvLayer => l.kind === 'conv').map((l) => l.name);
}
