// Every backward rule of src/nn/backward.ts against central finite differences.
// For y = forward(inputs) and a fixed random R, L = sum(y * R) (in float64, from the float32
// y), so dL/dinput is the backward of seed R. Ops that are linear in the checked input are
// checked with a large step (exact up to float32 rounding); the others with a small step on
// inputs kept away from their kinks (ReLU at 0, MaxPool ties).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import {
  add, channelMean, channelStd, conv, crop, matmulConst, maxPool2, mse, reflectPad, relu, scale, sqrt, Tape, upsample2,
} from '../src/nn/backward.js';
import { gridLoss, totalVariationLoss } from '../src/train/losses.js';
import { Graph } from '../src/onnx/graph.js';
import { createSession, floatTensor } from '../src/runtime/session.js';
import { mulberry32 } from '../src/train/init.js';

interface Arg { shape: number[]; data: Float32Array; param?: boolean }

const rng = mulberry32;

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform in [-1, 1), but at least `gap` away from 0. */
function uniform(shape: number[], seed: number, gap = 0): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: numel(shape) }, () => {
    const v = 2 * r() - 1;
    return Math.abs(v) < gap ? Math.sign(v || 1) * (gap + Math.abs(v)) : v;
  });
}

/** A random permutation of evenly spaced values: every two entries differ by at least `step`. */
function distinct(shape: number[], seed: number, step: number): Float32Array {
  const r = rng(seed);
  const n = numel(shape);
  const a = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * step);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * Checks the gradients of every `param` argument of `forward` at up to `samples` coordinates
 * each: |fd - analytic| <= tol * max |analytic| over the whole gradient tensor.
 */
async function gradCheck(args: Record<string, Arg>, forward: (t: Tape, v: Record<string, string>) => string, h: number, tol = 1e-3, samples = 24): Promise<void> {
  const g = new Graph('gradcheck');
  const t = new Tape(g);
  const v = Object.fromEntries(Object.entries(args).map(([name, a]) => [name, t.input(name, a.shape, a.param ?? true)]));
  const y = forward(t, v);
  const yShape = [...t.shape(y)];
  const r = t.input('R', yShape);
  const grads = t.backward(y, r);
  g.output(y, 'y', yShape);
  for (const [name, grad] of grads) g.output(grad, `grad_${name}`, args[name].shape);
  const session = await createSession(g.toModel(13), { threads: 1 });

  const rData = uniform(yShape, 99);
  const feeds = (over: Record<string, Float32Array> = {}) => ({
    R: floatTensor(rData, yShape),
    ...Object.fromEntries(Object.entries(args).map(([name, a]) => [name, floatTensor(over[name] ?? a.data, a.shape)])),
  });
  const lossAt = async (over: Record<string, Float32Array>) => {
    const out = (await session.run(feeds(over))).y.data as Float32Array;
    let l = 0;
    for (let i = 0; i < out.length; i++) l += out[i] * rData[i];
    return l;
  };
  const base = await session.run(feeds());
  const pick = rng(7);
  for (const [name, a] of Object.entries(args)) {
    if (a.param === false) continue;
    const analytic = (base[`grad_${name}`] as ort.Tensor).data as Float32Array;
    assert.equal(analytic.length, a.data.length, `${name}: gradient size`);
    const scaleMax = analytic.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(Number.isFinite(scaleMax) && scaleMax > 0, `${name}: gradient is ${scaleMax ? 'not finite' : 'all zero'}`);
    const idx = a.data.length <= samples ? [...a.data.keys()] : Array.from({ length: samples }, () => Math.floor(pick() * a.data.length));
    for (const i of idx) {
      const plus = Float32Array.from(a.data), minus = Float32Array.from(a.data);
      plus[i] += h;
      minus[i] -= h;
      const fd = ((await lossAt({ [name]: plus })) - (await lossAt({ [name]: minus }))) / (plus[i] - minus[i]);
      assert.ok(Math.abs(fd - analytic[i]) <= tol * scaleMax,
        `d/d${name}[${i}]: finite difference ${fd} vs backward ${analytic[i]} (scale ${scaleMax})`);
    }
  }
}

test('conv 3x3 (in <= out channels): dx, dW, db', async () => {
  await gradCheck({
    x: { shape: [2, 3, 5, 6], data: uniform([2, 3, 5, 6], 1) },
    w: { shape: [4, 3, 3, 3], data: uniform([4, 3, 3, 3], 2) },
    b: { shape: [4], data: uniform([4], 3) },
  }, (t, v) => conv(t, v.x, v.w, v.b), 1, 1e-4);
});

test('conv 3x3 (in > out channels, the other weight-gradient path): dx, dW, db', async () => {
  await gradCheck({
    x: { shape: [2, 5, 6, 4], data: uniform([2, 5, 6, 4], 4) },
    w: { shape: [2, 5, 3, 3], data: uniform([2, 5, 3, 3], 5) },
    b: { shape: [2], data: uniform([2], 6) },
  }, (t, v) => conv(t, v.x, v.w, v.b), 1, 1e-4);
});

test('conv 1x1: dx, dW, db', async () => {
  await gradCheck({
    x: { shape: [2, 3, 3, 4], data: uniform([2, 3, 3, 4], 7) },
    w: { shape: [5, 3, 1, 1], data: uniform([5, 3, 1, 1], 8) },
    b: { shape: [5], data: uniform([5], 9) },
  }, (t, v) => conv(t, v.x, v.w, v.b), 1, 1e-4);
});

for (const shape of [[2, 3, 5, 7], [1, 2, 4, 4], [1, 2, 3, 2], [1, 1, 2, 3]]) {
  test(`reflection pad 1 on [${shape}]: dx folds the border back`, async () => {
    await gradCheck({ x: { shape, data: uniform(shape, 10) } }, (t, v) => reflectPad(t, v.x), 1, 1e-5, 200);
  });
}

test('reflection pad + conv 3x3 (the networks\' conv): dx, dW, db', async () => {
  await gradCheck({
    x: { shape: [2, 3, 4, 5], data: uniform([2, 3, 4, 5], 11) },
    w: { shape: [3, 3, 3, 3], data: uniform([3, 3, 3, 3], 12) },
    b: { shape: [3], data: uniform([3], 13) },
  }, (t, v) => conv(t, reflectPad(t, v.x), v.w, v.b), 1, 1e-4);
});

test('ReLU', async () => {
  await gradCheck({ x: { shape: [2, 3, 4, 4], data: uniform([2, 3, 4, 4], 14, 0.05) } }, (t, v) => relu(t, v.x), 1e-2, 1e-4, 96);
});

test('MaxPool 2x2', async () => {
  await gradCheck({ x: { shape: [2, 2, 4, 6], data: distinct([2, 2, 4, 6], 15, 0.05) } }, (t, v) => maxPool2(t, v.x), 1e-2, 1e-4, 96);
});

test('MaxPool 2x2 after ReLU (ties at 0 get no gradient)', async () => {
  await gradCheck({ x: { shape: [1, 2, 4, 4], data: distinct([1, 2, 4, 4], 16, 0.05) } }, (t, v) => maxPool2(t, relu(t, v.x)), 1e-2, 1e-4, 32);
});

test('nearest upsample 2x', async () => {
  await gradCheck({ x: { shape: [2, 3, 3, 2], data: uniform([2, 3, 3, 2], 17) } }, (t, v) => upsample2(t, v.x), 1, 1e-5, 36);
});

test('per-channel mean', async () => {
  await gradCheck({ x: { shape: [2, 3, 3, 4], data: uniform([2, 3, 3, 4], 18) } }, (t, v) => channelMean(t, v.x), 1, 1e-5);
});

test('per-channel std (population variance, eps inside the sqrt; an all-zero channel stays finite)', async () => {
  const x = uniform([2, 3, 3, 4], 19);
  x.fill(0, 12, 24); // sample 0, channel 1
  await gradCheck({ x: { shape: [2, 3, 3, 4], data: x } }, (t, v) => channelStd(t, v.x, 1e-5), 1e-2, 2e-3, 72);
});

test('MSE (mean reduction), both sides', async () => {
  await gradCheck({
    a: { shape: [2, 3, 2, 2], data: uniform([2, 3, 2, 2], 20) },
    b: { shape: [2, 3, 2, 2], data: uniform([2, 3, 2, 2], 21) },
  }, (t, v) => mse(t, v.a, v.b), 1e-2, 1e-3);
});

test('RMS: sqrt of the MSE', async () => {
  await gradCheck({
    a: { shape: [2, 5], data: uniform([2, 5], 22) },
    b: { shape: [2, 5], data: uniform([2, 5], 23), param: false },
  }, (t, v) => sqrt(t, mse(t, v.a, v.b)), 1e-2, 1e-3);
});

test('crop along H and along W (cropped-away entries get no gradient)', async () => {
  const x = { shape: [2, 3, 5, 6], data: uniform([2, 3, 5, 6], 41) };
  await gradCheck({ x }, (t, v) => crop(t, v.x, 2, 1, 4), 1, 1e-3, 60);
  await gradCheck({ x }, (t, v) => crop(t, v.x, 3, 0, 5), 1, 1e-3, 60);
});

test('total variation: the mean squared neighbour differences along H plus along W', async () => {
  const x = { shape: [2, 3, 6, 5], data: uniform([2, 3, 6, 5], 43) };
  await gradCheck({ x }, (t, v) => totalVariationLoss(t, v.x), 1e-2, 1e-3, 60);
  // the value itself, against a direct loop: a constant image has none, a 1-px checker the most
  const g = new Graph('tv');
  const t = new Tape(g);
  g.output(totalVariationLoss(t, t.input('x', x.shape, true)), 'tv', []);
  const session = await createSession(g.toModel(13), { threads: 1 });
  const [n, c, h, w] = x.shape;
  const at = (i: number, j: number, k: number) => x.data[(i * h + j) * w + k];
  let dh = 0, dw = 0;
  for (let i = 0; i < n * c; i++) {
    for (let j = 0; j < h; j++) {
      for (let k = 0; k < w; k++) {
        if (j + 1 < h) dh += (at(i, j + 1, k) - at(i, j, k)) ** 2;
        if (k + 1 < w) dw += (at(i, j, k + 1) - at(i, j, k)) ** 2;
      }
    }
  }
  const expected = dh / (n * c * (h - 1) * w) + dw / (n * c * h * (w - 1));
  const got = ((await session.run({ x: floatTensor(x.data, x.shape) })).tv.data as Float32Array)[0];
  assert.ok(Math.abs(got - expected) < 1e-5 * expected, `tv ${got} vs ${expected}`);
});

test('a constant matrix on either side', async () => {
  const x = { shape: [2, 1, 3, 4], data: uniform([2, 1, 3, 4], 51) };
  const right = { rows: 4, cols: 2, data: uniform([8], 52) };
  const left = { rows: 5, cols: 3, data: uniform([15], 53) };
  await gradCheck({ x }, (t, v) => matmulConst(t, v.x, right, 'right'), 1, 1e-3, 24);
  await gradCheck({ x }, (t, v) => matmulConst(t, v.x, left, 'left'), 1, 1e-3, 24);
});

test('grid loss: gradient by finite differences; a synthetic 2/4/8-px pattern adds its mean square', async () => {
  const shape = [1, 3, 16, 16];
  await gradCheck({ x: { shape, data: uniform(shape, 61) } }, (t, v) => gridLoss(t, v.x), 1e-2, 1e-3, 48);
  const g = new Graph('grid');
  const t = new Tape(g);
  g.output(gridLoss(t, t.input('x', shape, true)), 'grid', []);
  const session = await createSession(g.toModel(13), { threads: 1 });
  const at = async (f: (x: number, y: number) => number) => {
    const data = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) data[c * 256 + y * 16 + x] = f(x, y);
    return ((await session.run({ x: floatTensor(data, shape) })).grid.data as Float32Array)[0];
  };
  assert.ok(Math.abs(await at(() => 0.5)) < 1e-9, 'a flat image has no grid');
  const a = 0.05;
  for (const [p, expected] of [[2, a * a], [4, a * a / 2], [8, a * a / 2]] as const) {
    const got = await at((x) => 0.5 + a * Math.cos((2 * Math.PI * x) / p));
    assert.ok(Math.abs(got - expected) < 1e-3 * expected, `period ${p}: ${got} vs ${expected}`);
  }
  // a smooth ramp (a photo's slow gradient) adds next to nothing
  const ramp = await at((x, y) => 0.3 + (x + y) / 64);
  assert.ok(ramp < 0.1 * a * a, `ramp ${ramp}`);
});

test('a small network: a value used twice sums its gradients', async () => {
  const shape = [2, 2, 4, 4];
  await gradCheck({
    x: { shape, data: uniform(shape, 24) },
    w1: { shape: [3, 2, 3, 3], data: uniform([3, 2, 3, 3], 25) },
    b1: { shape: [3], data: uniform([3], 26) },
    w2: { shape: [2, 3, 3, 3], data: uniform([2, 3, 3, 3], 27) },
    b2: { shape: [2], data: uniform([2], 28) },
    m: { shape: [2, 2], data: uniform([2, 2], 29), param: false },
    s: { shape: [2, 2], data: uniform([2, 2], 30), param: false },
  }, (t, v) => {
    const f = relu(t, conv(t, reflectPad(t, v.x), v.w1, v.b1));
    const y = conv(t, reflectPad(t, upsample2(t, maxPool2(t, f))), v.w2, v.b2);
    return add(t, [scale(t, mse(t, channelMean(t, y), v.m), 0.5), sqrt(t, mse(t, channelStd(t, y, 1e-5), v.s)), mse(t, y, v.x)]);
  }, 1e-3, 1e-2);
});
