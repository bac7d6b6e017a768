import type * as ort from 'onnxruntime-node';
import { deepestLayer, encoderLayers, type CutLayer, type Layer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { emitLayers, encoderModel } from '../models/graphs.js';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor, runFloat, type RuntimeOptions } from '../runtime/session.js';
import { ADAIN_EPS } from '../stylize/features.js';
import type { FeatureTransform } from '../stylize/model.js';
import { featureCovariance, wctInto } from '../stylize/wct.js';
import { lossNetworkLayers, type LossNetwork } from './step-graph.js';

export interface StepTargets {
  /** AdaIN output t per sample (style mode) or the content features (reconstruct), [B,C,h,w]. */
  target: Float32Array;
  /** Style statistics per layer, [B,C_l] each (style mode). */
  styleMean: Map<CutLayer, Float32Array>;
  styleStd: Map<CutLayer, Float32Array>;
  /** The loss network's statistics of the style images per layer, [B,C_l] each (with a loss network). */
  lossMean: Map<CutLayer, Float32Array>;
  lossStd: Map<CutLayer, Float32Array>;
  /** The loss network's features of the content images at its deepest layer (with a photo content loss). */
  lossContent?: Float32Array;
}

/**
 * The frozen encoder outside the training graph: content features at the cut, style
 * statistics at every style layer, and the AdaIN targets (constants for the step).
 * In style mode one run encodes content and style as one batch and computes the statistics
 * and AdaIN in the graph, so only the small results leave onnxruntime (the JS statistics and
 * the copies of the full relu1_1.. maps were ~20% of a cd16x step).
 */
export class TargetEncoder {
  private constructor(
    private readonly contentOnly: ort.InferenceSession,
    private readonly styled: ort.InferenceSession | null,
    private readonly lossStats: ort.InferenceSession | null,
    readonly cut: CutLayer,
    readonly styleLayers: CutLayer[],
    readonly lossLayers: CutLayer[],
    private readonly photoContent: boolean,
    private readonly transform: FeatureTransform,
  ) {}

  /**
   * `lossNetwork`: a second network whose statistics of the style images the loss also matches
   * (step-graph.ts LossNetwork); `photoContent`: it also gives its features of the content images
   * (the photo content loss).
   */
  static async create(kind: EncoderKind, cut: CutLayer, styleLayers: CutLayer[], weights: ConvWeights, opts: RuntimeOptions, lossNetwork?: LossNetwork, photoContent = false, transform: FeatureTransform = 'adain'): Promise<TargetEncoder> {
    const layers = encoderLayers(cut, kind !== 'vgg19bn');
    const sessions: ort.InferenceSession[] = [];
    const open = async (model: Uint8Array) => {
      try {
        const s = await createSession(model, opts);
        sessions.push(s);
        return s;
      } catch (e) {
        await Promise.all(sessions.map((s) => s.release()));
        throw e;
      }
    };
    const contentOnly = await open(encoderModel(layers, weights, [cut]));
    // style mode (reconstruct has no style layers); with a loss network the encoder may add no layer of its own
    const styled = styleLayers.length || lossNetwork ? await open(targetsModel(layers, weights, cut, styleLayers, transform === 'wct')) : null;
    const photo = photoContent && lossNetwork !== undefined;
    const lossStats = lossNetwork?.styleLayers.length ? await open(statsModel(lossNetwork, photo)) : null;
    return new TargetEncoder(contentOnly, styled, lossStats, cut, styleLayers, lossNetwork?.styleLayers ?? [], photo, transform);
  }

  async targets(content: Float32Array, style: Float32Array | undefined, dims: number[]): Promise<StepTargets> {
    const styleMean = new Map<CutLayer, Float32Array>(), styleStd = new Map<CutLayer, Float32Array>();
    const lossMean = new Map<CutLayer, Float32Array>(), lossStd = new Map<CutLayer, Float32Array>();
    if (!style || !this.styled) {
      const fc = (await runFloat(this.contentOnly, 'image', content, dims)).get(this.cut)!;
      return { target: fc.data, styleMean, styleStd, lossMean, lossStd };
    }
    const out = await this.styled.run({ content: floatTensor(content, dims), style: floatTensor(style, dims) });
    collectStats(out, this.styleLayers, styleMean, styleStd);
    let lossContent: Float32Array | undefined;
    if (this.lossStats) {
      const feeds: Record<string, ort.Tensor> = { style: floatTensor(style, dims) };
      if (this.photoContent) feeds.content = floatTensor(content, dims);
      const lossOut = await this.lossStats.run(feeds);
      collectStats(lossOut, this.lossLayers, lossMean, lossStd);
      if (this.photoContent) lossContent = lossOut[`content_${deepestLayer(this.lossLayers)}`].data as Float32Array;
    }
    const target = this.transform === 'wct' ? wctTargets(out.content_features, out.style_features) : out.target.data as Float32Array;
    return { target, styleMean, styleStd, lossMean, lossStd, lossContent };
  }

  async dispose(): Promise<void> {
    await this.contentOnly.release();
    await this.styled?.release();
    await this.lossStats?.release();
  }
}

/** The whitening and colouring transform of each sample's content features [B,C,h,w] to its style's. */
function wctTargets(content: ort.Tensor, style: ort.Tensor): Float32Array {
  const [B, C, h, w] = content.dims, [, , hs, ws] = style.dims;
  const fc = content.data as Float32Array, fs = style.data as Float32Array;
  const out = new Float32Array(fc.length), n = C * h * w, ns = C * hs * ws;
  for (let b = 0; b < B; b++) {
    const f = { c: C, h, w, data: fc.subarray(b * n, (b + 1) * n) };
    wctInto(out.subarray(b * n, (b + 1) * n), f, featureCovariance(f), featureCovariance({ c: C, h: hs, w: ws, data: fs.subarray(b * ns, (b + 1) * ns) }), 1);
  }
  return out;
}

function collectStats(out: ort.InferenceSession.ReturnType, layers: readonly CutLayer[], mean: Map<CutLayer, Float32Array>, std: Map<CutLayer, Float32Array>): void {
  for (const layer of layers) {
    mean.set(layer, out[`style_mean_${layer}`].data as Float32Array);
    std.set(layer, out[`style_std_${layer}`].data as Float32Array);
  }
}

/** Per-channel mean, centred values and std over H*W, as channelStats computes them (population variance, + ADAIN_EPS under the root). */
function channelStatsOps(g: Graph, f: string): { mean: string; centred: string; std: string } {
  const mean = g.op('ReduceMean', [f], { axes: { ints: [2, 3] }, keepdims: { i: 1 } });
  const centred = g.op('Sub', [f, mean]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: { ints: [2, 3] }, keepdims: { i: 1 } });
  return { mean, centred, std: g.op('Sqrt', [g.op('Add', [variance, g.float([ADAIN_EPS], [])])]) };
}

/** Outputs `style_mean_<layer>` and `style_std_<layer>` [N,C] of one set of feature maps. */
function outputStats(g: Graph, layer: CutLayer, features: string): void {
  const flat = (v: string) => g.op('Squeeze', [v, g.int64([2, 3])]);
  const s = channelStatsOps(g, features);
  g.output(flat(s.mean), `style_mean_${layer}`, ['N', 'C']);
  g.output(flat(s.std), `style_std_${layer}`, ['N', 'C']);
}

/**
 * Style [N,3,H,W] -> the loss network's channel means and stds [N,C_l] at each of its style layers;
 * with `photoContent` also content [N,3,H,W] -> its features `content_<deepest layer>`, in the
 * same run (the two batches as one).
 */
export function statsModel(net: LossNetwork, photoContent = false): Uint8Array {
  const g = new Graph('loss-network-stats');
  const style = g.input('style', ['N', 3, 'H', 'W']);
  const input = photoContent ? g.op('Concat', [g.input('content', ['N', 3, 'H', 'W']), style], { axis: { i: 0 } }) : style;
  const { taps } = emitLayers(g, input, lossNetworkLayers(net), net.weights);
  const deepest = deepestLayer(net.styleLayers);
  for (const layer of net.styleLayers) {
    if (!photoContent) {
      outputStats(g, layer, taps.get(layer)!);
      continue;
    }
    const [content, styled] = g.opMulti('Split', [taps.get(layer)!], 2, { axis: { i: 0 } });
    outputStats(g, layer, styled);
    if (layer === deepest) g.output(content, `content_${deepest}`, ['N', 'C', 'h', 'w']);
  }
  return g.toModel();
}

/**
 * Content and style [N,3,H,W] -> AdaIN target at the cut [N,C,h,w] and the style images'
 * channel means and standard deviations [N,C_l] at each style layer, as channelStats and
 * adainInto compute them (centred variance, + ADAIN_EPS under the root).
 */
export function targetsModel(layers: readonly Layer[], w: ConvWeights, cut: CutLayer, styleLayers: readonly CutLayer[], features = false): Uint8Array {
  const g = new Graph('adain-targets');
  const content = g.input('content', ['N', 3, 'H', 'W']);
  const style = g.input('style', ['N', 3, 'H', 'W']);
  const { taps } = emitLayers(g, g.op('Concat', [content, style], { axis: { i: 0 } }), layers, w);
  const halves = (f: string) => g.opMulti('Split', [f], 2, { axis: { i: 0 } });
  for (const layer of styleLayers) outputStats(g, layer, halves(taps.get(layer)!)[1]);
  const [fc, fs] = halves(taps.get(cut)!);
  const c = channelStatsOps(g, fc), s = channelStatsOps(g, fs);
  g.output(g.op('Add', [g.op('Mul', [c.centred, g.op('Div', [s.std, c.std])]), s.mean]), 'target', ['N', 'C', 'h', 'w']);
  // the wct transform needs the maps themselves (TargetEncoder computes it in JS)
  if (features) {
    g.output(fc, 'content_features', ['N', 'C', 'h', 'w']);
    g.output(fs, 'style_features', ['N', 'C', 'h', 'w']);
  }
  return g.toModel();
}
