import { UserError } from '../errors.js';
import type { ConvParams } from '../nn/layers.js';
import type { Tensor, TensorMap } from '../weights/tensor.js';
import { convNames, decoderLayers, encoderLayers, type CutLayer } from './architectures.js';

import type { EncoderKind } from './registry.js';
export type { EncoderKind };

/** Conv weights under the project's canonical layer names (conv1_1, dec4_1, ...). */
export type ConvWeights = Map<string, ConvParams>;

const BN_EPS = 1e-5;

/**
 * Maps an encoder checkpoint onto canonical names. Upstream files name layers three ways:
 * nn.Sequential indices (normalised VGG), convXY (Collaborative Distillation) and
 * torchvision's features.N with batch-norm (folded into the conv here, as in eval mode).
 */
export function encoderWeights(kind: EncoderKind, cut: CutLayer, ckpt: TensorMap, file: string): ConvWeights {
  const names = convNames(encoderLayers(cut, kind !== 'vgg19bn'));
  if (hasCanonical(ckpt, names)) return pick(ckpt, names);
  let convs: ConvParams[];
  if (kind === 'cd16x') {
    convs = names.map((n) => byName(ckpt, n.replace('_', ''), file));
  } else if (kind === 'vgg19bn') {
    convs = sequentialConvs(ckpt, 'features.').map(({ prefix, params }) => foldBatchNorm(ckpt, prefix, params));
  } else {
    convs = sequentialConvs(ckpt, '').map((s) => s.params);
  }
  return assign(names, convs, file, 'encoder', kind, cut);
}

/** Maps a decoder checkpoint (nn.Sequential indices, convXY names, or canonical) onto canonical names. */
export function decoderWeights(cut: CutLayer, ckpt: TensorMap, file: string): ConvWeights {
  const names = convNames(decoderLayers(cut));
  if (hasCanonical(ckpt, names)) return pick(ckpt, names);
  if (ckpt.has(`conv${cut.slice(4).replace('_', '')}.weight`)) {
    return assign(names, names.map((n) => byName(ckpt, `conv${n.slice(3).replace('_', '')}`, file)), file, 'decoder', 'cd16x', cut);
  }
  return assign(names, sequentialConvs(ckpt, '').map((s) => s.params), file, 'decoder', 'AdaIN/WCT', cut);
}

function hasCanonical(ckpt: TensorMap, names: string[]): boolean {
  return names.every((n) => ckpt.has(`${n}.weight`));
}

function pick(ckpt: TensorMap, names: string[]): ConvWeights {
  return new Map(names.map((n) => [n, { weight: ckpt.get(`${n}.weight`)!, bias: ckpt.get(`${n}.bias`)! }]));
}

function byName(ckpt: TensorMap, key: string, file: string): ConvParams {
  const weight = ckpt.get(`${key}.weight`);
  const bias = ckpt.get(`${key}.bias`);
  if (!weight || !bias) throw new UserError(`${file}: no layer '${key}' in this checkpoint; is it the right file for this model?`);
  return { weight, bias };
}

/** The 4-D conv weights of an nn.Sequential state dict, in index order. */
function sequentialConvs(ckpt: TensorMap, prefix: string): { prefix: string; params: ConvParams }[] {
  const out: { index: number; prefix: string; params: ConvParams }[] = [];
  for (const [key, w] of ckpt) {
    const m = new RegExp(`^${prefix.replace('.', '\\.')}(\\d+)\\.weight$`).exec(key);
    if (!m || w.shape.length !== 4) continue;
    const p = `${prefix}${m[1]}`;
    const bias = ckpt.get(`${p}.bias`) ?? { shape: [w.shape[0]], data: new Float32Array(w.shape[0]) };
    out.push({ index: Number(m[1]), prefix: p, params: { weight: w, bias } });
  }
  return out.sort((a, b) => a.index - b.index);
}

function foldBatchNorm(ckpt: TensorMap, convPrefix: string, p: ConvParams): ConvParams {
  const bn = convPrefix.replace(/(\d+)$/, (d) => String(Number(d) + 1));
  const gamma = ckpt.get(`${bn}.weight`), beta = ckpt.get(`${bn}.bias`);
  const mean = ckpt.get(`${bn}.running_mean`), variance = ckpt.get(`${bn}.running_var`);
  if (!gamma || !beta || !mean || !variance) return p;
  const [o] = p.weight.shape;
  const per = p.weight.data.length / o;
  const w = new Float32Array(p.weight.data);
  const b = new Float32Array(o);
  for (let i = 0; i < o; i++) {
    const s = gamma.data[i] / Math.sqrt(variance.data[i] + BN_EPS);
    for (let j = 0; j < per; j++) w[i * per + j] *= s;
    b[i] = (p.bias.data[i] - mean.data[i]) * s + beta.data[i];
  }
  return { weight: { shape: p.weight.shape, data: w }, bias: { shape: [o], data: b } };
}

/** Pairs layer names with convs in order, checking that the channels chain up. */
function assign(names: string[], convs: ConvParams[], file: string, role: string, layout: string, cut: CutLayer): ConvWeights {
  const fix = `check that it is a ${layout} ${role} for ${cut} (--model/--encoder/--decoder)`;
  if (convs.length < names.length) {
    throw new UserError(`${file}: has ${convs.length} conv layers, a ${role} to ${cut} needs ${names.length}; ${fix}`);
  }
  const out: ConvWeights = new Map();
  let prevOut: number | undefined;
  names.forEach((n, i) => {
    const { weight, bias } = convs[i];
    const [o, inC] = weight.shape;
    if (weight.shape.length !== 4 || bias.shape[0] !== o) throw new UserError(`${file}: layer ${n} has malformed weights [${weight.shape}]; ${fix}`);
    if (prevOut !== undefined && inC !== prevOut) {
      throw new UserError(`${file}: layer ${n} takes ${inC} channels but the previous layer gives ${prevOut}; ${fix}`);
    }
    prevOut = o;
    out.set(n, { weight, bias });
  });
  return out;
}

export function outChannels(w: ConvWeights, name: string): number {
  return (w.get(name)!.weight as Tensor).shape[0];
}
