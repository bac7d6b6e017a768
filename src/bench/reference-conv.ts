/**
 * The ceiling the model is compared with: onnxruntime on one large 3x3 convolution
 * (128 -> 128 channels on 128x128, zero padding 1), the best case for its conv kernels.
 */
import type * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor } from '../runtime/session.js';
import { pseudoRandom, timeMs } from '../runtime/stats.js';

export const REFERENCE_CHANNELS = 128;
export const REFERENCE_SIDE = 128;
export const REFERENCE_NAME = `conv3x3-${REFERENCE_CHANNELS}`;
/** The reference conv's input shape. */
export const REFERENCE_DIMS = [1, REFERENCE_CHANNELS, REFERENCE_SIDE, REFERENCE_SIDE];
export const REFERENCE_FLOPS = 2 * REFERENCE_CHANNELS * REFERENCE_CHANNELS * 9 * REFERENCE_SIDE * REFERENCE_SIDE;

/** The reference conv as an ONNX model with input `x` [1,C,S,S] (also run in the browser by the web benchmark). */
export function referenceConvModel(): Uint8Array {
  const c = REFERENCE_CHANNELS, s = REFERENCE_SIDE;
  const g = new Graph('reference-conv');
  const x = g.input('x', REFERENCE_DIMS);
  // Scaled like a trained conv so that values stay in a normal float range.
  const weight = pseudoRandom(c * c * 9, 7).map((v) => (v - 0.5) * 0.1);
  const w = g.initializer('weight', { shape: [c, c, 3, 3], data: weight });
  const b = g.initializer('bias', { shape: [c], data: new Float32Array(c) });
  const y = g.op('Conv', [x, w, b], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] }, strides: { ints: [1, 1] } });
  g.output(y, 'y', [1, c, s, s]);
  return g.toModel();
}

export class ReferenceConv {
  private constructor(private readonly session: ort.InferenceSession, private readonly input: ort.Tensor) {}

  static async create(threads: number): Promise<ReferenceConv> {
    const session = await createSession(referenceConvModel(), { threads });
    return new ReferenceConv(session, floatTensor(pseudoRandom(REFERENCE_CHANNELS * REFERENCE_SIDE * REFERENCE_SIDE, 11), REFERENCE_DIMS));
  }

  /** Milliseconds of one run. */
  async time(): Promise<number> {
    return timeMs(() => this.session.run({ x: this.input }));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
