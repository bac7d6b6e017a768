/**
 * He (Kaiming normal, fan_in, ReLU gain) initialisation of conv weights with a seeded
 * generator, as torch.nn.init.kaiming_normal_(w, mode='fan_in', nonlinearity='relu'):
 * std = sqrt(2 / fan_in), fan_in = in_channels * kh * kw; biases zero.
 * The generator is a small self-contained one (mulberry32 + Box-Muller) so that a seed
 * gives the same decoder on every machine.
 */
import { decoderLayers, encoderLayers, type CutLayer } from '../models/architectures.js';
import type { ConvWeights } from '../models/canonical-weights.js';
import { numel } from '../weights/tensor.js';

/** mulberry32: a fast 32-bit seeded uniform generator on [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller over `uniform`, both outputs of each pair used). */
export function normalSampler(uniform: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u1 = 1 - uniform(); // (0, 1]: log never sees 0
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}

/** The He-normal standard deviation for an OIHW weight shape. */
export function heStd(shape: readonly number[]): number {
  if (shape.length < 2) throw new Error(`heStd: weight shape [${shape}] has no fan-in`);
  return Math.sqrt(2 / (numel(shape) / shape[0]));
}

/** One He-normal weight tensor's values. */
export function heNormal(shape: readonly number[], normal: () => number): Float32Array {
  const std = heStd(shape);
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = normal() * std;
  return out;
}

/**
 * He-initialised conv layers from weight shapes (OIHW), in the given order, with zero biases.
 * The same seed and shapes always give the same values.
 */
export function heInit(shapes: Iterable<readonly [string, readonly number[]]>, seed: number): ConvWeights {
  const normal = normalSampler(mulberry32(seed));
  const out: ConvWeights = new Map();
  for (const [name, shape] of shapes) {
    out.set(name, {
      weight: { shape: [...shape], data: heNormal(shape, normal) },
      bias: { shape: [shape[0]], data: new Float32Array(shape[0]) },
    });
  }
  return out;
}

/**
 * The decoder's conv weight shapes for an encoder cut at `cut`: dec<X_Y> mirrors conv<X_Y>
 * (its input and output channels swapped), so any encoder width (VGG-19, cd16x) works.
 * `encoder` holds the encoder's canonical conv weights (conv1_1 ...).
 */
export function decoderShapes(cut: CutLayer, encoder: ConvWeights): [string, number[]][] {
  const encConvs = new Set(encoderLayers(cut, false).flatMap((l) => (l.kind === 'conv' ? [l.name] : [])));
  return decoderLayers(cut).flatMap((l): [string, number[]][] => {
    if (l.kind !== 'conv') return [];
    const encName = `conv${l.name.slice(3)}`;
    const enc = encoder.get(encName);
    if (!encConvs.has(encName) || !enc) throw new Error(`decoderShapes: encoder has no ${encName} for decoder layer ${l.name}`);
    const [o, i, kh, kw] = enc.weight.shape;
    return [[l.name, [i, o, kh, kw]]];
  });
}

/** A freshly He-initialised decoder for `encoder` cut at `cut`. */
export function initDecoder(cut: CutLayer, encoder: ConvWeights, seed: number): ConvWeights {
  return heInit(decoderShapes(cut, encoder), seed);
}
