import type * as ort from 'onnxruntime-node';
import { encoderLayers, type CutLayer, type Layer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { emitLayers, encoderModel } from '../models/graphs.js';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor, runFloat, type RuntimeOptions } from '../runtime/session.js';
import { ADAIN_EPS } from '../stylize/features.js';

export interface StepTargets {
  /** AdaIN output t per sample (style mode) or the content features (reconstruct), [B,C,h,w]. */
  target: Float32Array;
  /** Style statistics per layer, [B,C_l] each (style mode). */
  styleMean: Map<CutLayer, Float32Array>;
  styleStd: Map<CutLayer, Float32Array>;
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
    readonly cut: CutLayer,
    readonly styleLayers: CutLayer[],
  ) {}

  static async create(kind: EncoderKind, cut: CutLayer, styleLayers: CutLayer[], weights: ConvWeights, opts: RuntimeOptions): Promise<TargetEncoder> {
    const layers = encoderLayers(cut, kind !== 'vgg19bn');
    const contentOnly = await createSession(encoderModel(layers, weights, [cut]), opts);
    const styled = styleLayers.length
      ? await createSession(targetsModel(layers, weights, cut, styleLayers), opts).catch(async (e: unknown) => { await contentOnly.release(); throw e; })
      : null;
    return new TargetEncoder(contentOnly, styled, cut, styleLayers);
  }

  async targets(content: Float32Array, style: Float32Array | undefined, dims: number[]): Promise<StepTargets> {
    const styleMean = new Map<CutLayer, Float32Array>(), styleStd = new Map<CutLayer, Float32Array>();
    if (!style || !this.styled) {
      const fc = (await runFloat(this.contentOnly, 'image', content, dims)).get(this.cut)!;
      return { target: fc.data, styleMean, styleStd };
    }
    const out = await this.styled.run({ content: floatTensor(content, dims), style: floatTensor(style, dims) });
    for (const layer of this.styleLayers) {
      styleMean.set(layer, out[`style_mean_${layer}`].data as Float32Array);
      styleStd.set(layer, out[`style_std_${layer}`].data as Float32Array);
    }
    return { target: out.target.data as Float32Array, styleMean, styleStd };
  }

  async dispose(): Promise<void> {
    await this.contentOnly.release();
    await this.styled?.release();
  }
}

/**
 * Content and style [N,3,H,W] -> AdaIN target at the cut [N,C,h,w] and the style images'
 * channel means and standard deviations [N,C_l] at each style layer, as channelStats and
 * adainInto compute them (centred variance, + ADAIN_EPS under the root).
 */
export function targetsModel(layers: readonly Layer[], w: ConvWeights, cut: CutLayer, styleLayers: readonly CutLayer[]): Uint8Array {
  const g = new Graph('adain-targets');
  const content = g.input('content', ['N', 3, 'H', 'W']);
  const style = g.input('style', ['N', 3, 'H', 'W']);
  const { taps } = emitLayers(g, g.op('Concat', [content, style], { axis: { i: 0 } }), layers, w);
  const halves = (f: string) => g.opMulti('Split', [f], 2, { axis: { i: 0 } });
  const stats = (f: string) => {
    const mean = g.op('ReduceMean', [f], { axes: { ints: [2, 3] }, keepdims: { i: 1 } });
    const centred = g.op('Sub', [f, mean]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: { ints: [2, 3] }, keepdims: { i: 1 } });
    return { mean, centred, std: g.op('Sqrt', [g.op('Add', [variance, g.float([ADAIN_EPS], [])])]) };
  };
  const flat = (v: string) => g.op('Squeeze', [v, g.int64([2, 3])]);
  for (const layer of styleLayers) {
    const s = stats(halves(taps.get(layer)!)[1]);
    g.output(flat(s.mean), `style_mean_${layer}`, ['N', 'C']);
    g.output(flat(s.std), `style_std_${layer}`, ['N', 'C']);
  }
  const [fc, fs] = halves(taps.get(cut)!);
  const c = stats(fc), s = stats(fs);
  g.output(g.op('Add', [g.op('Mul', [c.centred, g.op('Div', [s.std, c.std])]), s.mean]), 'target', ['N', 'C', 'h', 'w']);
  return g.toModel();
}
