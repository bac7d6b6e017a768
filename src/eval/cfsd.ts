import type * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor, type RuntimeOptions } from '../runtime/session.js';
import type { FeatureMap } from '../stylize/features.js';

/**
 * `cfsd`, the content feature structural distance (as in the StyleID evaluation protocol):
 * how far the output's self-similarity structure is from the content's, at the judge's relu3_1.
 *
 * For one image: the relu3_1 map average-pooled 2x2 (so each position is an 8x8-pixel patch;
 * 1024 patches at the 256x256 evaluation size, which bounds the N x N matrices to 4 MB),
 * each patch's feature vector scaled to unit length, S = the N x N cosine similarities, and
 * P = softmax of each row of S. cfsd = the mean over the N rows of KL(P_content || P_output)
 * (natural log). 0 when the output has the content's structure (any pure recolouring that
 * keeps the relative feature directions scores near 0); larger as edges and layout are lost.
 */
export class Cfsd {
  private constructor(private readonly session: ort.InferenceSession, private readonly dims: number[]) {}

  /** A session for relu3_1 maps of `c` channels and h x w positions (both even). */
  static async create(c: number, h: number, w: number, opts: RuntimeOptions = {}): Promise<Cfsd> {
    if (h % 2 || w % 2) throw new RangeError(`cfsd: feature maps must have even sizes, got ${h}x${w}`);
    return new Cfsd(await createSession(cfsdModel(c, h, w), opts), [1, c, h, w]);
  }

  async distance(output: FeatureMap, content: FeatureMap): Promise<number> {
    const [, c, h, w] = this.dims;
    for (const m of [output, content]) {
      if (m.c !== c || m.h !== h || m.w !== w) throw new RangeError(`cfsd: a ${m.c}x${m.h}x${m.w} map, expected ${c}x${h}x${w}`);
    }
    const res = await this.session.run({ output: floatTensor(output.data, this.dims), content: floatTensor(content.data, this.dims) });
    return Number((res.cfsd.data as Float32Array)[0]);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function cfsdModel(c: number, h: number, w: number): Uint8Array {
  const g = new Graph('cfsd');
  const n = (h / 2) * (w / 2);
  const logRows = (x: string) => {
    const pooled = g.op('AveragePool', [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
    const flat = g.op('Reshape', [pooled, g.int64([c, n])]); // [C, N]
    const norm = g.op('Sqrt', [g.op('Add', [g.op('ReduceSum', [g.op('Mul', [flat, flat]), g.int64([0])], { keepdims: { i: 1 } }), g.float([1e-12], [])])]);
    const unit = g.op('Div', [flat, norm]);
    const sim = g.op('MatMul', [g.op('Transpose', [unit], { perm: { ints: [1, 0] } }), unit]); // [N, N]
    return g.op('LogSoftmax', [sim], { axis: { i: 1 } });
  };
  g.input('output', [1, c, h, w]);
  g.input('content', [1, c, h, w]);
  const lo = logRows('output'), lc = logRows('content');
  const kl = g.op('ReduceSum', [g.op('Mul', [g.op('Exp', [lc]), g.op('Sub', [lc, lo])]), g.int64([1])], { keepdims: { i: 0 } });
  g.output(g.op('ReduceMean', [kl], { keepdims: { i: 0 } }), 'cfsd', []);
  return g.toModel(13);
}
