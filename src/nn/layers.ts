import type { Graph } from '../onnx/graph.js';
import type { Tensor } from '../weights/tensor.js';

/**
 * Layer kinds of the AdaIN networks. Each emits its forward ops into a graph; the
 * networks are plain lists of these (see models/architectures.ts).
 */
export interface ConvParams {
  weight: Tensor; // OIHW
  bias: Tensor;
}

/** 3x3 convolutions use reflection padding 1 (emitted as Pad + Conv); 1x1 use none. */
export function conv(g: Graph, x: string, name: string, p: ConvParams): string {
  const k = p.weight.shape[2];
  const w = g.initializer(`${name}.weight`, p.weight);
  const b = g.initializer(`${name}.bias`, p.bias);
  const input = k === 3 ? reflectPad(g, x, 1) : x;
  return convValid(g, input, w, b, k);
}

/** A k x k convolution, stride 1, no padding, of value `x` by the values `w` (OIHW) and `b`. */
export function convValid(g: Graph, x: string, w: string, b: string, k: number): string {
  return g.op('Conv', [x, w, b], { kernel_shape: { ints: [k, k] }, pads: { ints: [0, 0, 0, 0] }, strides: { ints: [1, 1] } });
}

export function reflectPad(g: Graph, x: string, p: number): string {
  return g.op('Pad', [x, g.int64([0, 0, p, p, 0, 0, p, p])], { mode: { s: 'reflect' } });
}

export function relu(g: Graph, x: string): string {
  return g.op('Relu', [x]);
}

export function maxPool2(g: Graph, x: string): string {
  return g.op('MaxPool', [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
}

/** Nearest 2x upsampling with constant scales, matching torch's Upsample(mode='nearest'). */
export function upsample2(g: Graph, x: string): string {
  return g.op('Resize', [x, '', g.float([1, 1, 2, 2])], {
    mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' },
  });
}
