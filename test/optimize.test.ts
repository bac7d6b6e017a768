// The Gatys optimisation graph (src/eval/optimize.ts): its pixel gradient against central finite
// differences on a tiny image with small random VGG-shaped weights, and that Adam on the
// pixels lowers the loss with the real judge network.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { optimizeCommand } from '../src/cli/optimize-command.js';
import { UserError } from '../src/errors.js';
import { Judge } from '../src/eval/judge.js';
import { GatysOptimizer, optimizeLayers, optimizeModel } from '../src/eval/optimize.js';
import type { RgbImage } from '../src/image/io.js';
import type { ConvWeights } from '../src/models/canonical-weights.js';
import { createSession, floatTensor } from '../src/runtime/session.js';
import { mulberry32 } from '../src/train/init.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const JUDGE_FILE = path.join(MODELS_DIR, 'vgg19-normalised/vgg_normalised_conv3_1.pth');
const noJudge = existsSync(JUDGE_FILE) ? false : `${JUDGE_FILE} not found`;

const rng = mulberry32;

function uniform(n: number, r: () => number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** A small normalised-VGG-shaped network to relu3_1 (conv0 1x1, then 3x3 convs) with random weights. */
function smallWeights(seed: number): ConvWeights {
  const r = rng(seed);
  const channels: Record<string, [number, number, number]> = {
    conv0: [3, 3, 1], conv1_1: [4, 3, 3], conv1_2: [4, 4, 3], conv2_1: [5, 4, 3], conv2_2: [5, 5, 3], conv3_1: [6, 5, 3],
  };
  assert.deepEqual(Object.keys(channels), optimizeLayers());
  return new Map(Object.entries(channels).map(([name, [o, i, k]]) => {
    const fan = i * k * k;
    return [name, {
      weight: { shape: [o, i, k, k], data: uniform(o * fan, r, -Math.sqrt(6 / fan), Math.sqrt(6 / fan)) },
      bias: { shape: [o], data: uniform(o, r, 0, 0.1) },
    }];
  }));
}

test('optimisation graph: the pixel gradient matches central finite differences (16x16)', async () => {
  const size = 16;
  const weights = smallWeights(1);
  const session = await createSession(optimizeModel({ weights, width: size, height: size, contentWeight: 1, styleWeight: 10 }), { threads: 1 });
  const r = rng(2);
  const image = uniform(3 * size * size, r, 0.1, 0.9);
  const feeds = {
    content_target: floatTensor(uniform(6 * 4 * 4, r, 0, 1), [1, 6, 4, 4]),
    style_mean_relu1_1: floatTensor(uniform(4, r, 0, 1), [1, 4]),
    style_std_relu1_1: floatTensor(uniform(4, r, 0.1, 1), [1, 4]),
    style_mean_relu2_1: floatTensor(uniform(5, r, 0, 1), [1, 5]),
    style_std_relu2_1: floatTensor(uniform(5, r, 0.1, 1), [1, 5]),
    style_mean_relu3_1: floatTensor(uniform(6, r, 0, 1), [1, 6]),
    style_std_relu3_1: floatTensor(uniform(6, r, 0.1, 1), [1, 6]),
  };
  const run = async (x: Float32Array) => session.run({ ...feeds, image: floatTensor(x, [1, 3, size, size]) });
  const base = await run(image);
  const grad = base.grad.data as Float32Array;
  const loss = (base.loss.data as Float32Array)[0];
  const parts = (base.content_loss.data as Float32Array)[0] + 10 * (base.style_loss.data as Float32Array)[0];
  assert.ok(Math.abs(loss - parts) <= 1e-5 * Math.abs(loss), `loss ${loss} = content + 10 style ${parts}`);
  const scale = grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
  assert.ok(Number.isFinite(scale) && scale > 0, `gradient scale ${scale}`);

  // Small enough that no ReLU or max-pool switches between the two sides (1e-2 already does
  // for some pixels of this small network), large enough for float32 noise on a loss of ~40.
  const h = 1e-3;
  const pick = rng(3);
  // the pixels with the largest gradients (where a wrong rule shows most) plus random ones
  const largest = [...grad.keys()].sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a])).slice(0, 4);
  const idx = [...largest, ...Array.from({ length: 8 }, () => Math.floor(pick() * grad.length))];
  for (const i of idx) {
    const plus = image.slice(), minus = image.slice();
    plus[i] += h;
    minus[i] -= h;
    const lp = ((await run(plus)).loss.data as Float32Array)[0], lm = ((await run(minus)).loss.data as Float32Array)[0];
    const fd = (lp - lm) / (plus[i] - minus[i]);
    assert.ok(Math.abs(fd - grad[i]) <= 2e-2 * scale, `pixel ${i}: finite difference ${fd} vs backward ${grad[i]} (scale ${scale})`);
  }
});

test('optimisation graph: sizes must be multiples of 4', () => {
  assert.throws(() => optimizeModel({ weights: smallWeights(1), width: 18, height: 16, contentWeight: 1, styleWeight: 10 }), UserError);
});

test('20 Adam steps on a 32x32 pair lower the loss and keep the pixels in [0,1] (real judge)', { skip: noJudge }, async () => {
  const size = 32;
  const judge = await Judge.load({ file: JUDGE_FILE, threads: 1 });
  try {
    const r = rng(4);
    // content: smooth gradients; style: high-contrast noise
    const content: RgbImage = { width: size, height: size, data: Float32Array.from({ length: 3 * size * size }, (_, i) => ((i % size) + Math.floor(i / size) % size) / (2 * size)) };
    const style: RgbImage = { width: size, height: size, data: Float32Array.from({ length: 3 * size * size }, () => (r() < 0.5 ? 0.05 : 0.95)) };
    const ct = await judge.contentTarget(content), st = await judge.styleTarget(style);
    const opt = await GatysOptimizer.create({ weights: judge.weights, width: size, height: size, contentWeight: 1, styleWeight: 10 }, { threads: 1 });
    try {
      const res = await opt.run(content, ct, st, { iterations: 20, snapshots: [10, 20] });
      assert.equal(res.losses.length, 20);
      assert.equal(res.losses[0].content, 0, 'starts from the content image');
      const start = await judge.measure(content, ct, st);
      const end = await judge.measure(res.image, ct, st);
      const total = (m: { style: number; content: number }) => m.content + 10 * m.style;
      assert.ok(Math.abs(res.losses[0].loss - total(start)) <= 1e-3 * total(start), `graph loss ${res.losses[0].loss} vs judge ${total(start)}`);
      assert.ok(total(end) < 0.5 * total(start), `loss ${total(start)} -> ${total(end)}`);
      assert.ok(end.style < start.style, `style distance ${start.style} -> ${end.style}`);
      assert.ok(res.image.data.every((v) => v >= 0 && v <= 1), 'pixels in [0,1]');
      assert.deepEqual([...res.snapshots.keys()].sort((a, b) => a - b), [10, 20]);
      assert.deepEqual(res.snapshots.get(20)!.data, res.image.data);
    } finally {
      await opt.dispose();
    }
  } finally {
    await judge.dispose();
  }
});

test('adain optimize writes the optimised image (atomic, at the optimised size)', { skip: noJudge }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'adain-optimize-'));
  try {
    const ex = (f: string) => path.resolve(import.meta.dirname, '../examples', f);
    const out = path.join(dir, 'out.png');
    await optimizeCommand().exitOverride().parseAsync([
      '-c', ex('chelsea.jpg'), '-s', ex('scream.jpg'), '-o', out, '--size', '40', '--iterations', '3', '--threads', '1',
      '--judge', JUDGE_FILE, '-q',
    ], { from: 'user' });
    const meta = await sharp(out).metadata();
    assert.equal(Math.max(meta.width, meta.height), 40);
    assert.ok(meta.width % 4 === 0 && meta.height % 4 === 0, `${meta.width}x${meta.height}`);
    await assert.rejects(optimizeCommand().exitOverride().parseAsync(['-c', ex('chelsea.jpg'), '-s', ex('scream.jpg'), '-o', path.join(dir, 'x.bmp'), '-q'], { from: 'user' }), UserError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
