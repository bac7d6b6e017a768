import { ElemType, type Graph } from '../onnx/graph.js';
import { convValid, maxPool2 as maxPoolOp, reflectPad as reflectPadOp, relu as reluOp, upsample2 as upsampleOp } from './layers.js';

/**
 * Reverse-mode differentiation of the layer kinds, emitted as ONNX ops (micrograd-style).
 *
 * Each differentiable kind below emits its forward ops, records the output's static shape
 * and a closure that, given the upstream gradient dy, emits the gradient of each of its
 * inputs, right beside the forward. `Tape.backward` runs those closures in reverse order and
 * sums the gradients of values used more than once. Only values that depend on a parameter
 * get gradients: a frozen encoder's weights are constants, so its convs emit input
 * gradients only. All ops are Conv/MatMul/elementwise/Reduce/Slice/Concat (no per-element
 * Gather/Scatter), which onnxruntime runs fast on CPU. Shapes are static (one graph per
 * batch and crop size).
 */

export type Shape = readonly number[];

/** Per input, a thunk that emits its gradient (run only when that input needs one), or null. */
type Backward = (dy: string) => ((() => string) | null)[];

interface TapeNode { inputs: string[]; output: string; backward: Backward }

export interface TapeOptions {
  /**
   * How a conv weight gradient takes its k*k shifted copies: 'grouped' (default) as one
   * depthwise Conv with k*k outputs per group, the fastest on the CPU provider; 'batched' as a
   * one-channel Conv over the channels folded into the batch, for onnxruntime 1.30's WebGPU
   * provider: when the outputs per group (9 here) are not a multiple of 4 but the total is, its
   * grouped Conv computes outputs four at a time from the group of the first of the four, so
   * some come from the wrong channel (wrong weight gradients, correct losses).
   */
  unfold?: 'grouped' | 'batched';
}

export class Tape {
  private readonly nodes: TapeNode[] = [];
  private readonly shapes = new Map<string, Shape>();
  private readonly params: string[] = [];
  /** Values that depend on a parameter, i.e. that need gradients. */
  private readonly live = new Set<string>();

  constructor(readonly g: Graph, readonly opts: TapeOptions = {}) {}

  /** A float graph input; gradients are computed for `param` inputs. */
  input(name: string, shape: Shape, param = false): string {
    this.g.input(name, [...shape]);
    this.shapes.set(name, shape);
    if (param) { this.params.push(name); this.live.add(name); }
    return name;
  }

  /** Declares a value computed outside the tape (an initializer, say) as a constant of this shape. */
  constant(value: string, shape: Shape): string {
    this.shapes.set(value, shape);
    return value;
  }

  shape(value: string): Shape {
    const s = this.shapes.get(value);
    if (!s) throw new Error(`tape: no shape recorded for value '${value}'`);
    return s;
  }

  /** Records one differentiable op: `output` (of `shape`) computed from `inputs`. */
  record(output: string, shape: Shape, inputs: string[], backward: Backward): string {
    if (this.shapes.has(output)) throw new Error(`tape: value '${output}' recorded twice`);
    this.shapes.set(output, shape);
    if (inputs.some((v) => this.live.has(v))) {
      this.live.add(output);
      this.nodes.push({ inputs, output, backward });
    }
    return output;
  }

  /**
   * Emits the backward pass from `output` with upstream gradient `seed` (same shape; the
   * constant 1 for a scalar loss) and returns the gradient of every parameter, by name.
   * A parameter that `output` does not depend on gets a zero gradient.
   */
  backward(output: string, seed: string): Map<string, string> {
    const grads = new Map<string, string[]>([[output, [seed]]]);
    for (const node of [...this.nodes].reverse()) {
      const parts = grads.get(node.output);
      if (!parts) continue;
      const thunks = node.backward(sum(this.g, parts));
      node.inputs.forEach((v, i) => {
        const thunk = thunks[i];
        if (!this.live.has(v) || !thunk) return;
        grads.set(v, [...(grads.get(v) ?? []), thunk()]);
      });
    }
    return new Map(this.params.map((p) => {
      const parts = grads.get(p);
      return [p, parts ? sum(this.g, parts) : this.g.op('Expand', [this.g.float([0], []), this.g.int64([...this.shape(p)])])];
    }));
  }
}

// ----------------------------------------------------------------------------- layer kinds

/**
 * Conv k x k, stride 1, no padding, with bias: y[o,p] = b[o] + sum_{i,s} W[o,i,s] x[i,p+s].
 * dx: the full convolution of dy with the kernel flipped and its in/out channels swapped
 *     (a plain Conv with zero padding k-1; faster here than ConvTranspose).
 * dW[o,i,s] = sum_{n,p} dy[n,o,p] x[n,i,p+s]: see convWeightGrad.
 * db[o] = sum_{n,p} dy[n,o,p].
 */
export function conv(t: Tape, x: string, w: string, b: string): string {
  const g = t.g;
  const [n, , h, wd] = t.shape(x);
  const [co, , k] = t.shape(w);
  const yShape = [n, co, h - k + 1, wd - k + 1];
  const y = convValid(g, x, w, b, k);
  return t.record(y, yShape, [x, w, b], (dy) => [
    () => g.op('Conv', [dy, flipKernel(g, w)], { kernel_shape: { ints: [k, k] }, pads: { ints: [k - 1, k - 1, k - 1, k - 1] } }),
    () => convWeightGrad(g, x, t.shape(x), dy, yShape, k, t.opts.unfold ?? 'grouped'),
    () => g.op('ReduceSum', [dy, g.int64([0, 2, 3])], { keepdims: { i: 0 } }),
  ]);
}

/**
 * Reflection padding by 1 on H and W. Forward row i+1 copies x row i; row 0 mirrors x row 1
 * and row H+1 mirrors x row H-2. Backward: crop the centre and fold the two border rows back
 * onto rows 1 and H-2; then the same for columns.
 */
export function reflectPad(t: Tape, x: string): string {
  const [n, c, h, w] = t.shape(x);
  if (h < 2 || w < 2) throw new Error(`reflection padding needs a map of at least 2x2, got ${h}x${w}`);
  const y = reflectPadOp(t.g, x, 1);
  return t.record(y, [n, c, h + 2, w + 2], [x], (dy) => [
    () => foldBorder(t.g, foldBorder(t.g, dy, 2, h), 3, w),
  ]);
}

/** ReLU: dx = dy where y > 0, else 0. */
export function relu(t: Tape, x: string): string {
  const g = t.g;
  const y = reluOp(g, x);
  return t.record(y, t.shape(x), [x], (dy) => [
    () => g.op('Mul', [dy, mask(g, g.op('Greater', [y, zero(g)]))]),
  ]);
}

/**
 * MaxPool 2x2, stride 2: the gradient goes to the element that equals its window's maximum,
 * dx = up(dy) where x == up(y), else 0. Ties would get the gradient twice, but every pool in
 * these networks follows a ReLU, so ties only happen (with probability 1) between zeros,
 * whose gradient the ReLU's backward sets to 0 anyway.
 */
export function maxPool2(t: Tape, x: string): string {
  const g = t.g;
  const [n, c, h, w] = t.shape(x);
  if (h % 2 || w % 2) throw new Error(`max pooling backward needs even map sizes, got ${h}x${w}`);
  const y = maxPoolOp(g, x);
  return t.record(y, [n, c, h / 2, w / 2], [x], (dy) => [
    () => g.op('Mul', [upsampleOp(g, dy), mask(g, g.op('Equal', [x, upsampleOp(g, y)]))]),
  ]);
}

/** Nearest 2x upsampling: each x element feeds a 2x2 block, so dx = 2x2 sum pooling of dy (4 x average; exact in float). */
export function upsample2(t: Tape, x: string): string {
  const g = t.g;
  const [n, c, h, w] = t.shape(x);
  const y = upsampleOp(g, x);
  return t.record(y, [n, c, 2 * h, 2 * w], [x], (dy) => [
    () => g.op('Mul', [g.op('AveragePool', [dy], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }), g.float([4], [])]),
  ]);
}

/** Per-channel mean over H*W: [N,C,H,W] -> [N,C]. dx = dmean / (H*W), broadcast. */
export function channelMean(t: Tape, x: string): string {
  const g = t.g;
  const [n, c, h, w] = t.shape(x);
  const m = g.op('ReduceMean', [x], { axes: { ints: [2, 3] }, keepdims: { i: 0 } });
  return t.record(m, [n, c], [x], (dm) => [
    () => g.op('Expand', [g.op('Unsqueeze', [g.op('Mul', [dm, g.float([1 / (h * w)], [])]), g.int64([2, 3])]), g.int64([n, c, h, w])]),
  ]);
}

/**
 * Per-channel std over H*W: sqrt(population variance + eps), [N,C,H,W] -> [N,C]; eps keeps
 * an all-zero channel's gradient finite. dvar/dx = 2 (x - mean) / HW (the mean's own
 * dependence on x cancels) and dstd/dvar = 1 / (2 std), so dx = dstd (x - mean) / (HW std).
 */
export function channelStd(t: Tape, x: string, eps: number): string {
  const g = t.g;
  const [n, c, h, w] = t.shape(x);
  const centred = g.op('Sub', [x, g.op('ReduceMean', [x], { axes: { ints: [2, 3] }, keepdims: { i: 1 } })]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: { ints: [2, 3] }, keepdims: { i: 0 } });
  const std = g.op('Sqrt', [g.op('Add', [variance, g.float([eps], [])])]);
  return t.record(std, [n, c], [x], (ds) => [
    () => g.op('Mul', [centred, g.op('Unsqueeze', [g.op('Div', [ds, g.op('Mul', [std, g.float([h * w], [])])]), g.int64([2, 3])])]),
  ]);
}

/** Mean squared error over all elements, a scalar: L = mean((a - b)^2). da = dL 2 (a - b) / n = -db. */
export function mse(t: Tape, a: string, b: string): string {
  const g = t.g;
  const count = t.shape(a).reduce((p, q) => p * q, 1);
  const diff = g.op('Sub', [a, b]);
  const l = g.op('ReduceMean', [g.op('Mul', [diff, diff])], { keepdims: { i: 0 } });
  const da = (dl: string) => g.op('Mul', [diff, g.op('Mul', [dl, g.float([2 / count], [])])]);
  return t.record(l, [], [a, b], (dl) => [() => da(dl), () => g.op('Neg', [da(dl)])]);
}

/**
 * The entries [start, end) of `axis`: a Slice. dx: dy zero-padded back to the input's size
 * there (a constant Pad), so that values cropped away get no gradient.
 */
export function crop(t: Tape, x: string, axis: number, start: number, end: number): string {
  const g = t.g;
  const shape = t.shape(x);
  const size = shape[axis];
  if (!(start >= 0 && start < end && end <= size)) throw new Error(`crop [${start}, ${end}) out of range for axis ${axis} of size ${size}`);
  const y = g.op('Slice', [x, g.int64([start]), g.int64([end]), g.int64([axis])]);
  const out = shape.map((d, i) => (i === axis ? end - start : d));
  return t.record(y, out, [x], (dy) => [() => {
    const pads = new Array<number>(2 * shape.length).fill(0);
    pads[axis] = start;
    pads[shape.length + axis] = size - end;
    return g.op('Pad', [dy, g.int64(pads)], { mode: { s: 'constant' } });
  }]);
}

/**
 * Multiplication by a constant matrix: along the last axis (`right`: y = x @ M, M [W,K]) or
 * the one before it (`left`: y = M @ x, M [K,H]). dx = dy @ M^T, or M^T @ dy.
 */
export function matmulConst(t: Tape, x: string, m: { rows: number; cols: number; data: Float32Array }, side: 'left' | 'right'): string {
  const g = t.g;
  const shape = t.shape(x);
  const r = shape.length;
  const inner = side === 'right' ? shape[r - 1] : shape[r - 2];
  const contracted = side === 'right' ? m.rows : m.cols;
  if (inner !== contracted) throw new Error(`matmulConst: a [${m.rows},${m.cols}] matrix on the ${side} of [${shape}]`);
  const transposed = new Float32Array(m.data.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) transposed[j * m.rows + i] = m.data[i * m.cols + j];
  const mat = g.initializer('proj', { shape: [m.rows, m.cols], data: m.data });
  const matT = g.initializer('proj_t', { shape: [m.cols, m.rows], data: transposed });
  const y = g.op('MatMul', side === 'right' ? [x, mat] : [mat, x]);
  const out = side === 'right' ? [...shape.slice(0, r - 1), m.cols] : [...shape.slice(0, r - 2), m.rows, shape[r - 1]];
  return t.record(y, out, [x], (dy) => [() => g.op('MatMul', side === 'right' ? [dy, matT] : [matT, dy])]);
}

/** Square root: dx = dy / (2 sqrt(x)). */
export function sqrt(t: Tape, x: string): string {
  const g = t.g;
  const y = g.op('Sqrt', [x]);
  return t.record(y, t.shape(x), [x], (dy) => [() => g.op('Div', [dy, g.op('Mul', [y, g.float([2], [])])])]);
}

/** Multiplication by a constant: dx = c dy. */
export function scale(t: Tape, x: string, c: number): string {
  const g = t.g;
  const k = g.float([c], []);
  return t.record(g.op('Mul', [x, k]), t.shape(x), [x], (dy) => [() => g.op('Mul', [dy, k])]);
}

/** Sum of values of one shape: each input's gradient is dy. */
export function add(t: Tape, values: string[]): string {
  if (values.length === 1) return values[0];
  return t.record(sum(t.g, values), t.shape(values[0]), values, (dy) => values.map(() => () => dy));
}

// ----------------------------------------------------------------------------- helpers

function zero(g: Graph): string {
  return g.float([0], []);
}

/**
 * A boolean condition as a 0/1 float, for gradients as dy * mask. onnxruntime's CPU Where
 * runs on one thread; Cast + Mul use both (a ReLU backward at [8,16,256,256]: 20 -> 11 ms).
 */
function mask(g: Graph, condition: string): string {
  return g.op('Cast', [condition], { to: { i: ElemType.float } });
}

/** Pairwise Add rather than the variadic Sum, which onnxruntime's CPU provider runs on one thread. */
function sum(g: Graph, values: string[]): string {
  return values.slice(1).reduce((acc, v) => g.op('Add', [acc, v]), values[0]);
}

/** W [O,I,k,k] -> [I,O,k,k] flipped in both spatial axes: the kernel of a conv's input gradient. */
function flipKernel(g: Graph, w: string): string {
  const big = Number.MAX_SAFE_INTEGER;
  const flipped = g.op('Slice', [w, g.int64([-1, -1]), g.int64([-big, -big]), g.int64([2, 3]), g.int64([-1, -1])]);
  return g.op('Transpose', [flipped], { perm: { ints: [1, 0, 2, 3] } });
}

/**
 * dW[o,i,s] = sum_{n,p} dy[n,o,p] x[n,i,p+s], as one batched MatMul between one side and the
 * k*k shifted copies of the other (an "unfold"), then a sum over the batch. The side with
 * fewer channels is unfolded: x (shifts s, over the output positions p) or dy (shifts -s over
 * the input positions q = p+s, zero outside the output). The unfolded side is the MatMul's
 * left operand: onnxruntime packs the right one, and packing the small side is cheaper
 * (16 channels at 256x256, batch 8: 85 -> 60 ms).
 */
function convWeightGrad(g: Graph, x: string, xShape: Shape, dy: string, dyShape: Shape, k: number, how: 'grouped' | 'batched'): string {
  const [n, ci, hi, wi] = xShape;
  const [, co, ho, wo] = dyShape;
  const kk = k * k;
  const flat = (v: string, c: number, hw: number) => g.op('Reshape', [v, g.int64([n, c, hw])]);
  // Batched A @ B^T (onnxruntime fuses the Transpose into the MatMul), summed over the batch.
  const matmulT = (a: string, b: string) =>
    g.op('ReduceSum', [g.op('MatMul', [a, g.op('Transpose', [b], { perm: { ints: [0, 2, 1] } })]), g.int64([0])], { keepdims: { i: 0 } });
  if (ci <= co) {
    const ux = unfold(g, x, xShape, k, false, how); // [n, ci*kk, ho, wo]: ux[i,s,p] = x[i,p+s]
    const m = matmulT(flat(ux, ci * kk, ho * wo), flat(dy, co, ho * wo)); // [ci*kk, co]
    return g.op('Reshape', [g.op('Transpose', [m], { perm: { ints: [1, 0] } }), g.int64([co, ci, k, k])]);
  }
  const udy = unfold(g, dy, dyShape, k, true, how); // [n, co*kk, hi, wi]: udy[o,s,q] = dy[o,q-s]
  const m = matmulT(flat(udy, co * kk, hi * wi), flat(x, ci, hi * wi)); // [co*kk, ci]
  return g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [m, g.int64([co, kk, ci])])], { perm: { ints: [0, 2, 1] } }), g.int64([co, ci, k, k])]);
}

/**
 * The k*k shifted copies of each channel, as a Conv with one-hot kernels:
 * out[c*kk + s] at p = v[c, p+s] (valid), or with `full` = v[c, p-s] (zero padding k-1).
 * 'grouped': one depthwise Conv; 'batched': the same values from a one-channel Conv over
 * [n*c, 1, h, w], whose [n*c, kk, ...] output has the same memory layout (see TapeOptions).
 */
function unfold(g: Graph, v: string, shape: Shape, k: number, full: boolean, how: 'grouped' | 'batched'): string {
  const [n, c, h, w] = shape;
  const kk = k * k;
  const groups = how === 'grouped' ? c : 1;
  const kernel = new Float32Array(groups * kk * kk);
  for (let ch = 0; ch < groups; ch++) {
    for (let s = 0; s < kk; s++) kernel[(ch * kk + s) * kk + (full ? kk - 1 - s : s)] = 1;
  }
  const weight = g.initializer(`unfold${k}x${k}_${groups}${full ? '_full' : ''}`, { shape: [groups * kk, 1, k, k], data: kernel });
  const pad = full ? k - 1 : 0;
  const attrs = { kernel_shape: { ints: [k, k] }, pads: { ints: [pad, pad, pad, pad] } };
  if (how === 'grouped') return g.op('Conv', [v, weight], { group: { i: c }, ...attrs });
  const out = g.op('Conv', [g.op('Reshape', [v, g.int64([n * c, 1, h, w])]), weight], attrs);
  const side = (d: number) => d + 2 * pad - k + 1;
  return g.op('Reshape', [out, g.int64([n, c * kk, side(h), side(w)])]);
}

/**
 * The backward of reflection padding by 1 along one axis of size `size` (dy has size+2 there):
 * entry r+1 of dy belongs to x[r]; entry 0 also to x[1] and entry size+1 to x[size-2].
 * Emitted as slices of untouched runs, the two corrected rows, and one Concat.
 */
function foldBorder(g: Graph, dy: string, axis: number, size: number): string {
  const slice = (a: number, b: number) => g.op('Slice', [dy, g.int64([a]), g.int64([b]), g.int64([axis])]);
  const own = (a: number, b: number) => slice(a + 1, b + 1); // the entries of dy that copy x[a..b)
  const extra = new Map<number, string[]>([[1, [slice(0, 1)]]]);
  extra.set(size - 2, [...(extra.get(size - 2) ?? []), slice(size + 1, size + 2)]);
  const parts: string[] = [];
  let start = 0;
  for (const r of [...extra.keys()].sort((a, b) => a - b)) {
    if (r > start) parts.push(own(start, r));
    parts.push(sum(g, [own(r, r + 1), ...extra.get(r)!]));
    start = r + 1;
  }
  if (start < size) parts.push(own(start, size));
  return g.op('Concat', parts, { axis: { i: axis } });
}
