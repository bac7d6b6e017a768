import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command, CommanderError } from 'commander';
import sharp from 'sharp';
import { pseudoRandom } from '../src/runtime/stats.js';
import { interleave } from '../src/bench/interleave.js';
import { findTorch } from '../src/bench/torch.js';
import { trainArchitecture } from '../src/bench/train-step.js';
import { TorchTrainWorker } from '../src/bench/train-torch.js';
import { formatTrainTable } from '../src/bench/train-format.js';
import { benchCommand } from '../src/cli/bench-command.js';
import type { ConvWeights } from '../src/models/canonical-weights.js';
import { initDecoder } from '../src/train/init.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;

const ROW_KEYS = ['batch', 'crop', 'data_step_ms', 'data_steps', 'data_wait_ms', 'images_per_s', 'model', 'ratio', 'step_ms', 'torch_images_per_s', 'torch_step_ms'];

function capture() {
  const out: string[] = [], err: string[] = [];
  return { out, err, io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) } };
}

/** A folder of n small noise images (decoding them is quick). */
async function noiseImages(dir: string, n: number, seed: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const w = 40 + 8 * i, h = 36;
    const px = Buffer.from(pseudoRandom(w * h * 3, seed + i).map((v) => Math.floor(v * 256)));
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg().toFile(path.join(dir, `${i}.jpg`));
  }
  return dir;
}

test('adain bench train --json on cd16x-r41 at batch 2, 32x32 gives one uniform row, data path measured', { skip }, async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-bench-train-'));
  try {
    const content = await noiseImages(path.join(tmp, 'content'), 3, 1);
    const style = await noiseImages(path.join(tmp, 'style'), 2, 10);
    const { out, err, io } = capture();
    // Under a parent program as in main(): options after `train` that bench also has (--runs,
    // --threads, --json, --model, --no-torch) must still reach the subcommand.
    const program = new Command('adain').addCommand(benchCommand(io));
    await program.parseAsync(['bench', 'train', '--json', '--batch', '2', '--crop', '32', '--runs', '1', '--no-torch', '--threads', '1',
      '--model', 'cd16x-r41', '--models-dir', MODELS_DIR, '--data-content', content, '--data-style', style,
      '--load-size', '32', '--data-steps', '2'], { from: 'user' });
    const stderr = err.join('');
    assert.match(stderr, /threads: 1; median of 1 step after/);
    assert.match(stderr, /data \(cd16x-r41\): waited [\d.]+ ms over 2 steps/);
    const rows = JSON.parse(out.join('')) as Record<string, unknown>[];
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.deepEqual(Object.keys(row).sort(), ROW_KEYS);
    assert.equal(row.model, 'cd16x-r41');
    assert.equal(row.batch, 2);
    assert.equal(row.crop, 32);
    assert.equal(row.torch_images_per_s, null);
    assert.equal(row.torch_step_ms, null);
    assert.equal(row.ratio, null);
    assert.equal(row.data_steps, 2);
    for (const k of ['images_per_s', 'step_ms', 'data_step_ms'] as const) assert.ok(typeof row[k] === 'number' && row[k] > 0, `${k} = ${row[k]}`);
    assert.ok(typeof row.data_wait_ms === 'number' && row.data_wait_ms >= 0, `data_wait_ms = ${row.data_wait_ms}`);
    assert.ok(Math.abs((row.images_per_s as number) - 2000 / (row.step_ms as number)) < 0.05 * (row.images_per_s as number));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('bench and bench train both have their own --help', async () => {
  for (const [args, expect] of [[['--help'], /Usage: bench \[options\] \[command\][\s\S]*train/], [['train', '--help'], /Usage: bench train[\s\S]*--data-steps[\s\S]*images_per_s/]] as const) {
    let text = '';
    const cmd = benchCommand().exitOverride().configureOutput({ writeOut: (s) => { text += s; }, writeErr: (s) => { text += s; } });
    await assert.rejects(cmd.parseAsync([...args], { from: 'user' }), (e: unknown) => e instanceof CommanderError && e.code === 'commander.helpDisplayed');
    assert.match(text, expect);
  }
});

test('bench train rejects a crop the layout cannot take, before loading anything', async () => {
  const { io } = capture();
  await assert.rejects(benchCommand(io).parseAsync(['train', '--crop', '36', '--model', 'cd16x-r41', '--no-torch', '--no-data'], { from: 'user' }),
    /--crop 36 must be a multiple of 8/);
});

test('scripts/bench_torch_train.py takes the architecture JSON and times a step', async (t) => {
  const found = await findTorch();
  if (!found.found) return t.skip(`no PyTorch: ${found.why}`);
  // A narrow VGG layout to relu2_1 (conv0, conv1_1, conv1_2, pool, conv2_1), described as the bench does.
  const shapes: [string, number[]][] = [['conv0', [3, 3, 1, 1]], ['conv1_1', [4, 3, 3, 3]], ['conv1_2', [4, 4, 3, 3]], ['conv2_1', [8, 4, 3, 3]]];
  const encoder: ConvWeights = new Map(shapes.map(([n, s]) => [n, {
    weight: { shape: s, data: new Float32Array(s.reduce((a, b) => a * b)) }, bias: { shape: [s[0]], data: new Float32Array(s[0]) },
  }]));
  const arch = trainArchitecture('vgg19-normalised', 'relu2_1', encoder, initDecoder('relu2_1', encoder, 1));
  assert.deepEqual(arch.taps, [1, 4]);
  const worker = TorchTrainWorker.start(found.found, 1);
  try {
    await worker.load({ arch, batch: 2, crop: 16, lr: 1e-4, contentWeight: 1, styleWeight: 10 });
    const ms = await worker.time();
    assert.ok(ms > 0, `ms = ${ms}`);
    await assert.rejects(worker.load({ arch: { ...arch, taps: [2] }, batch: 2, crop: 16, lr: 1e-4, contentWeight: 1, styleWeight: 10 }),
      /tap 2 is not a conv with ReLU|last tap/);
  } finally {
    await worker.close();
  }
});

test('bench train footer shows how far the per-round ratio moved', () => {
  const row = { model: 'cd16x-r41', batch: 8, crop: 256, images_per_s: 4, torch_images_per_s: 2.5, ratio: 1.6, step_ms: 2000, torch_step_ms: 3200, data_steps: null, data_step_ms: null, data_wait_ms: null };
  const text = formatTrainTable({
    rows: [row], roundRatios: [{ model: 'cd16x-r41', min: 1.31, max: 1.9 }], threads: 2, runs: 5, warmup: 2,
    torch: { used: null, why: 'test' }, data: { used: null, why: 'skipped (--no-data)' },
  });
  assert.match(text, /1\.60x/);
  assert.match(text, /median of 5 steps after 2 warm-ups/);
  assert.match(text, /vs torch per round \(PyTorch ms \/ ours, one after the other\): cd16x-r41 1\.31x\.\.1\.90x/);
});

test('interleave takes turns and drops the warm-up rounds of every measure', async () => {
  const calls: string[] = [];
  let a = 0, b = 100;
  const [as, bs, none] = await interleave(3, [
    { run: async () => { calls.push('a'); return ++a; } },
    { run: async () => { calls.push('b'); return ++b; } },
    null,
  ], 2);
  assert.deepEqual(calls, ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
  assert.deepEqual(as, [3, 4, 5]);
  assert.deepEqual(bs, [103, 104, 105]);
  assert.equal(none, null);
});
