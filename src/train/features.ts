import type * as ort from 'onnxruntime-node';
import type { CutLayer } from '../models/architectures.js';
import { encoderLayers } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { encoderModel } from '../models/graphs.js';
import { createSession, runFloat, type RuntimeOptions } from '../runtime/session.js';
import { adainInto, channelStats, type ChannelStats, type FeatureMap } from '../stylize/features.js';

/** Per-sample views of a batch of feature maps [B,C,h,w]. */
function samples(data: Float32Array, dims: number[]): FeatureMap[] {
  const [b, c, h, w] = dims;
  return Array.from({ length: b }, (_, i) => ({ c, h, w, data: data.subarray(i * c * h * w, (i + 1) * c * h * w) }));
}

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
 */
export class TargetEncoder {
  private constructor(private readonly session: ort.InferenceSession, readonly cut: CutLayer, readonly styleLayers: CutLayer[]) {}

  static async create(kind: EncoderKind, cut: CutLayer, styleLayers: CutLayer[], weights: ConvWeights, opts: RuntimeOptions): Promise<TargetEncoder> {
    const outputs = [...new Set([cut, ...styleLayers])];
    const session = await createSession(encoderModel(encoderLayers(cut, kind !== 'vgg19bn'), weights, outputs), opts);
    return new TargetEncoder(session, cut, styleLayers);
  }

  async targets(content: Float32Array, style: Float32Array | undefined, dims: number[]): Promise<StepTargets> {
    const fc = (await runFloat(this.session, 'image', content, dims)).get(this.cut)!;
    const styleMean = new Map<CutLayer, Float32Array>(), styleStd = new Map<CutLayer, Float32Array>();
    if (!style) return { target: fc.data, styleMean, styleStd };
    const fs = await runFloat(this.session, 'image', style, dims);
    for (const layer of this.styleLayers) {
      const f = fs.get(layer)!;
      const stats = samples(f.data, f.dims).map((s) => channelStats(s));
      styleMean.set(layer, concat(stats.map((s) => s.mean)));
      styleStd.set(layer, concat(stats.map((s) => s.std)));
    }
    const target = new Float32Array(fc.data.length);
    const cs = samples(fc.data, fc.dims), ss = samples(fs.get(this.cut)!.data, fc.dims);
    cs.forEach((c, i) => {
      const out = target.subarray(i * c.data.length, (i + 1) * c.data.length);
      adainInto(out, c, channelStats(c), channelStats(ss[i]) as ChannelStats, 1);
    });
    return { target, styleMean, styleStd };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
