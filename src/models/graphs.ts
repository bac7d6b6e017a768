import { Graph } from '../onnx/graph.js';
import { conv, maxPool2, relu, upsample2 } from '../nn/layers.js';
import type { ConvLayer, CutLayer, Layer } from './architectures.js';
import type { ConvWeights } from './canonical-weights.js';

/** Emits a layer list; returns the value after each tapped ReLU and the final value. */
export function emitLayers(g: Graph, x: string, layers: readonly Layer[], w: ConvWeights): { out: string; taps: Map<CutLayer, string> } {
  const taps = new Map<CutLayer, string>();
  for (const l of layers) {
    if (l.kind === 'pool') x = maxPool2(g, x);
    else if (l.kind === 'up') x = upsample2(g, x);
    else {
      x = conv(g, x, l.name, w.get(l.name)!);
      if (l.relu) x = relu(g, x);
      if (l.tap) taps.set(l.tap, x);
    }
  }
  return { out: x, taps };
}

/** Encoder graph: image [N,3,H,W] RGB in [0,1] -> one output per requested ReLU. */
export function encoderModel(layers: readonly Layer[], w: ConvWeights, outputs: readonly CutLayer[]): Uint8Array {
  const g = new Graph('encoder');
  const x = g.input('image', ['N', 3, 'H', 'W']);
  const { taps } = emitLayers(g, x, layers, w);
  for (const t of outputs) g.output(taps.get(t)!, t);
  return g.toModel();
}

/** Decoder graph: features [N,C,h,w] -> image [N,3,H,W]. */
export function decoderModel(layers: readonly Layer[], w: ConvWeights): Uint8Array {
  const g = new Graph('decoder');
  const first = layers.find((l): l is ConvLayer => l.kind === 'conv')!;
  const c = w.get(first.name)!.weight.shape[1];
  const x = g.input('features', ['N', c, 'h', 'w']);
  g.output(emitLayers(g, x, layers, w).out, 'image');
  return g.toModel();
}
