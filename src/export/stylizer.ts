/**
 * The whole stylisation as one static ONNX graph for edge runtimes: camera pixels in,
 * encoder, AdaIN written out in plain ops (ReduceMean, Sub, Mul, Add, Div, Sqrt; no
 * InstanceNormalization or MVN), decoder, display pixels out. Every shape is fixed by the
 * export size, every pad, scale and axis is a constant, and each op is emitted in the form
 * its opset version defines.
 */
import { Graph } from '../onnx/graph.js';
import type { Layer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import type { ConvParams } from '../nn/layers.js';
import type { ChannelStats } from '../stylize/features.js';
import { foldInput, foldOutput, inputAdapter, outputAdapter, type PixelFormat } from './formats.js';
import { MAX_OPSET, MIN_OPSET } from './ops.js';

/** An encoder and decoder as layer lists with their weights (canonical names). */
export interface StylizerNetwork {
  encoderLayers: readonly Layer[];
  encoder: ConvWeights;
  decoderLayers: readonly Layer[];
  decoder: ConvWeights;
}

/**
 * Where the style comes from:
 * - baked: its AdaIN statistics are constants (one input, the content);
 * - stats: inputs `style_mean` and `style_std`, float32 [1,C,1,1];
 * - image: input `style`, a style image of a fixed size in the content's pixel format.
 */
export type StyleSource =
  | { kind: 'baked'; stats: ChannelStats }
  | { kind: 'stats' }
  | { kind: 'image'; width: number; height: number };

export interface StylizerSpec {
  width: number;
  height: number;
  opset: number;
  /** Content/style trade-off, baked in. */
  alpha: number;
  input: PixelFormat;
  output: PixelFormat;
  style: StyleSource;
  /** Added to both variances inside the sqrt. */
  eps: number;
  metadata?: Record<string, string>;
}

export const INPUT_CONTENT = 'content';
export const INPUT_STYLE = 'style';
export const INPUT_STYLE_MEAN = 'style_mean';
export const INPUT_STYLE_STD = 'style_std';
export const OUTPUT_IMAGE = 'stylized';

/** Builds the exported graph; float32 throughout (fp16.ts converts it). */
export function buildStylizer(net: StylizerNetwork, spec: StylizerSpec): Uint8Array {
  if (spec.opset < MIN_OPSET || spec.opset > MAX_OPSET) throw new RangeError(`opset ${spec.opset} outside ${MIN_OPSET}..${MAX_OPSET}`);
  const e = new Emitter(spec.opset);
  const g = e.g;
  const inA = inputAdapter(spec.input), outA = outputAdapter(spec.output);
  const firstConv = net.encoderLayers[0];
  if (firstConv?.kind !== 'conv') throw new Error('the encoder must start with a conv');
  const encWeights = new Map(net.encoder);
  encWeights.set(firstConv.name, foldInput(net.encoder.get(firstConv.name)!, inA));
  const lastConv = net.decoderLayers.at(-1);
  if (lastConv?.kind !== 'conv' || lastConv.relu) throw new Error('the decoder must end with a conv without ReLU');
  const decWeights = new Map(net.decoder);
  decWeights.set(lastConv.name, foldOutput(net.decoder.get(lastConv.name)!, outA));

  const image = (name: string, h: number, w: number) => {
    const x = g.input(name, [1, 3, h, w], inA.type);
    return inA.type === 'float' ? x : e.cast(x, 'float');
  };
  const f = e.layers(image(INPUT_CONTENT, spec.height, spec.width), net.encoderLayers, encWeights, 'enc');
  const c = encWeights.get(lastConvName(net.encoderLayers))!.weight.shape[0];
  const { alpha } = spec;

  let t = f;
  if (alpha !== 0) {
    const content = e.stats(f, spec.eps);
    const n = g.op('Div', [content.centred, content.std]);
    let styled: string;
    if (spec.style.kind === 'baked') {
      const { mean, std } = spec.style.stats;
      const scale = g.initializer('style_std_x_alpha', { shape: [1, c, 1, 1], data: std.map((v) => alpha * v) });
      const shift = g.initializer('style_mean_x_alpha', { shape: [1, c, 1, 1], data: mean.map((v) => alpha * v) });
      styled = g.op('Add', [g.op('Mul', [n, scale]), shift]);
    } else {
      let mean: string, std: string;
      if (spec.style.kind === 'stats') {
        mean = g.input(INPUT_STYLE_MEAN, [1, c, 1, 1]);
        std = g.input(INPUT_STYLE_STD, [1, c, 1, 1]);
      } else {
        const fs = e.layers(image(INPUT_STYLE, spec.style.height, spec.style.width), net.encoderLayers, encWeights, 'enc');
        const s = e.stats(fs, spec.eps);
        mean = s.mean; std = s.std;
      }
      if (alpha !== 1) {
        const a = g.float([alpha], []);
        mean = g.op('Mul', [mean, a]);
        std = g.op('Mul', [std, a]);
      }
      styled = g.op('Add', [g.op('Mul', [n, std]), mean]);
    }
    t = alpha === 1 ? styled : g.op('Add', [styled, g.op('Mul', [f, g.float([1 - alpha], [])])]);
  }

  const y = e.layers(t, net.decoderLayers, decWeights, 'dec');
  const outName = OUTPUT_IMAGE;
  if (outA.type === 'float') {
    e.clip(y, outA.lo, outA.hi, outName);
  } else {
    e.cast(e.clip(y, outA.lo, outA.hi), 'uint8', outName);
  }
  g.output(outName, outName, [1, 3, spec.height, spec.width], outA.type);
  return g.toModel(spec.opset, spec.metadata);
}

function lastConvName(layers: readonly Layer[]): string {
  const l = [...layers].reverse().find((x) => x.kind === 'conv');
  if (!l || l.kind !== 'conv') throw new Error('no conv layer');
  return l.name;
}

const CAST_TO = { float: 1, uint8: 2 } as const;

/** Op emission in the forms of one opset, with weights shared between uses of a layer. */
class Emitter {
  readonly g = new Graph('adain_stylizer');
  private readonly convs = new Map<string, { w: string; b: string }>();
  constructor(readonly opset: number) {}

  layers(x: string, layers: readonly Layer[], w: ConvWeights, prefix: string): string {
    for (const l of layers) {
      if (l.kind === 'pool') x = this.g.op('MaxPool', [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
      else if (l.kind === 'up') x = this.upsample2(x);
      else {
        x = this.conv(x, `${prefix}.${l.name}`, w.get(l.name)!);
        if (l.relu) x = this.g.op('Relu', [x]);
      }
    }
    return x;
  }

  conv(x: string, name: string, p: ConvParams): string {
    let c = this.convs.get(name);
    if (!c) {
      c = { w: this.g.initializer(`${name}.weight`, p.weight), b: this.g.initializer(`${name}.bias`, p.bias) };
      this.convs.set(name, c);
    }
    const k = p.weight.shape[2];
    const input = k === 3 ? this.g.op('Pad', [x, this.g.int64([0, 0, 1, 1, 0, 0, 1, 1])], { mode: { s: 'reflect' } }) : x;
    return this.g.op('Conv', [input, c.w, c.b], {
      kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] }, dilations: { ints: [1, 1] }, group: { i: 1 },
    });
  }

  /** Nearest 2x, torch's Upsample(mode='nearest'); opsets 11-12 require the roi input (an empty constant). */
  upsample2(x: string): string {
    const roi = this.opset < 13 ? this.g.float([], [0]) : '';
    return this.g.op('Resize', [x, roi, this.g.float([1, 1, 2, 2])], {
      mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' },
    });
  }

  /** Per-channel mean and std over H and W, population variance, eps inside the sqrt. */
  stats(x: string, eps: number): { mean: string; centred: string; std: string } {
    const mean = this.reduceMean(x);
    const centred = this.g.op('Sub', [x, mean]);
    const variance = this.reduceMean(this.g.op('Mul', [centred, centred]));
    const std = this.g.op('Sqrt', [this.g.op('Add', [variance, this.g.float([eps], [])])]);
    return { mean, centred, std };
  }

  reduceMean(x: string): string {
    return this.g.op('ReduceMean', [x], { axes: { ints: [2, 3] }, keepdims: { i: 1 } });
  }

  clip(x: string, lo: number, hi: number, outName?: string): string {
    return this.g.op('Clip', [x, this.g.float([lo], []), this.g.float([hi], [])], {}, outName);
  }

  cast(x: string, to: keyof typeof CAST_TO, outName?: string): string {
    return this.g.op('Cast', [x], { to: { i: CAST_TO[to] } }, outName);
  }
}
