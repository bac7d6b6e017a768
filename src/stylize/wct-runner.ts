import type * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph.js';
import { createSession, floatTensor, type RuntimeOptions } from '../runtime/session.js';
import type { FeatureMap } from './features.js';
import { styleColouring, symmetricPower, type FeatureCovariance } from './wct.js';

/**
 * The whitening and colouring transform with its two c x c x (h*w) products (the covariance
 * and the transform of every pixel) in onnxruntime's GEMM, and only the c x c work (the content's
 * eigendecomposition, the combined matrix) in JS: the same result as wct.ts's wctInto, which is
 * its reference, at a fraction of the time on real feature maps.
 */
export class WctRunner {
  private constructor(private readonly cov: ort.InferenceSession, private readonly apply: ort.InferenceSession) {}

  static async create(opts: RuntimeOptions = {}): Promise<WctRunner> {
    const cov = await createSession(covarianceModel(), opts);
    try {
      return new WctRunner(cov, await createSession(applyModel(), opts));
    } catch (e) {
      await cov.release();
      throw e;
    }
  }

  /** Per-channel mean and channel covariance (population) of a feature map. */
  async covariance(f: FeatureMap): Promise<FeatureCovariance> {
    const out = await this.cov.run({ features: floatTensor(f.data, [f.c, f.h * f.w]) });
    return { mean: out.mean.data as Float32Array, cov: Float64Array.from(out.cov.data as Float32Array) };
  }

  /** alpha * (S^1/2 C^-1/2 (f - mean_c) + mean_s) + (1 - alpha) * f, as wctInto. */
  async transform(f: FeatureMap, content: FeatureCovariance, style: FeatureCovariance, alpha: number): Promise<FeatureMap> {
    const c = f.c;
    const whiten = symmetricPower(content.cov, c, -0.5), colour = styleColouring(style.cov, c);
    // the blend folded into one affine map: M = alpha * S^1/2 C^-1/2 + (1 - alpha) I, b = alpha * (mean_s - S^1/2 C^-1/2 mean_c)
    const m = new Float32Array(c * c), b = new Float32Array(c);
    for (let i = 0; i < c; i++) {
      let tm = 0;
      for (let j = 0; j < c; j++) {
        let t = 0;
        for (let k = 0; k < c; k++) t += colour[i * c + k] * whiten[k * c + j];
        m[i * c + j] = alpha * t + (i === j ? 1 - alpha : 0);
        tm += t * content.mean[j];
      }
      b[i] = alpha * (style.mean[i] - tm);
    }
    const out = await this.apply.run({
      features: floatTensor(f.data, [c, f.h * f.w]), matrix: floatTensor(m, [c, c]), offset: floatTensor(b, [c, 1]),
    });
    return { c, h: f.h, w: f.w, data: out.target.data as Float32Array };
  }

  async dispose(): Promise<void> {
    await this.cov.release();
    await this.apply.release();
  }
}

/** features [C,N] -> mean [C], cov [C,C] = (f - mean)(f - mean)^T / N. */
function covarianceModel(): Uint8Array {
  const g = new Graph('wct-covariance');
  const f = g.input('features', ['C', 'N']);
  const mean = g.op('ReduceMean', [f], { axes: { ints: [1] }, keepdims: { i: 1 } });
  const centred = g.op('Sub', [f, mean]);
  const n = g.op('Cast', [g.op('Gather', [g.op('Shape', [f]), g.int64([1])])], { to: { i: 1 } });
  const product = g.op('MatMul', [centred, g.op('Transpose', [centred], { perm: { ints: [1, 0] } })]);
  g.output(g.op('Div', [product, n]), 'cov', ['C', 'C']);
  g.output(g.op('Squeeze', [mean, g.int64([1])]), 'mean', ['C']);
  return g.toModel();
}

/** features [C,N], matrix [C,C], offset [C,1] -> matrix . features + offset. */
function applyModel(): Uint8Array {
  const g = new Graph('wct-apply');
  const f = g.input('features', ['C', 'N']);
  const m = g.input('matrix', ['C', 'C']);
  const b = g.input('offset', ['C', 1]);
  g.output(g.op('Add', [g.op('MatMul', [m, f]), b]), 'target', ['C', 'N']);
  return g.toModel();
}
