// The moving average of the weights (--ema): its arithmetic, its place in checkpoints, and a
// training run checked against the average computed from the raw weights of every step.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../src/errors.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { WeightAverage } from '../src/train/ema.js';
import { train } from '../src/train/trainer.js';
import { readSafetensors } from '../src/weights/safetensors.js';
import { SHARED } from './helpers/cli.js';
import { tinyTrainConfig as config } from './helpers/train-config.js';

const skip = existsSync(path.join(SHARED, 'models')) ? false : `../shared not found at ${SHARED}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-ema-'));

test('WeightAverage: decay * average + (1 - decay) * weights per step; withAverage swaps the average in and the weights back, also on a throw', async () => {
  const w = Float32Array.of(1, 2), params = new Map([['a.weight', w]]);
  const avg = new WeightAverage(params, 0.5);
  w.set([3, 6]); avg.update(); // (1 + 3) / 2, (2 + 6) / 2
  w.set([5, 0]); avg.update(); // (2 + 5) / 2, (4 + 0) / 2
  assert.deepEqual([...avg.values.get('a.weight')!], [3.5, 2]);
  const seen = await avg.withAverage(async () => [...w]);
  assert.deepEqual(seen, [3.5, 2]);
  assert.deepEqual([...w], [5, 0]);
  await assert.rejects(avg.withAverage(async () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual([...w], [5, 0]);
  // a saved average is continued, not restarted
  assert.deepEqual([...new WeightAverage(params, 0.5, new Map([['a.weight', Float32Array.of(7, 7)]])).values.get('a.weight')!], [7, 7]);
  for (const bad of [0, 1, 1.5, Number.NaN]) assert.throws(() => new WeightAverage(params, bad), UserError);
  assert.throws(() => new WeightAverage(params, 0.9, new Map([['a.weight', Float32Array.of(1)]])), /damaged/);
});

test('a checkpoint keeps the average beside the weights, and decoder.safetensors gets what the run says', async () => {
  const dir = path.join(tmp, 'ckpt');
  const weight = { shape: [3, 2, 3, 3], data: Float32Array.from({ length: 54 }, (_, i) => i) };
  const bias = { shape: [3], data: Float32Array.of(1, 2, 3) };
  const ema = new Map([['dec1_1.weight', weight.data.map((x) => x / 2)], ['dec1_1.bias', Float32Array.of(0.5, 1, 1.5)]]);
  const averaged = new Map([['dec1_1', { weight: { shape: weight.shape, data: ema.get('dec1_1.weight')! }, bias: { shape: bias.shape, data: ema.get('dec1_1.bias')! } }]]);
  await saveCheckpoint(dir, { weights: new Map([['dec1_1', { weight, bias }]]), optimizer: { step: 1, m: new Map(), v: new Map() }, step: 1, config: { encoder: 'cd16x-r41', cut: 'relu4_1' }, ema, decoder: averaged });
  const back = await loadCheckpoint(dir);
  assert.deepEqual([...back.weights.keys()].sort(), ['dec1_1.bias', 'dec1_1.weight']);
  assert.deepEqual(back.ema, ema);
  assert.deepEqual(back.weights.get('dec1_1.bias')!.data, bias.data);
  const { tensors } = await readSafetensors(path.join(dir, 'decoder.safetensors'));
  assert.deepEqual(tensors.get('dec1_1.bias')!.data, Float32Array.of(0.5, 1, 1.5));
});

async function raw(dir: string): Promise<Map<string, Float32Array>> {
  const c = await loadCheckpoint(dir);
  return new Map([...c.weights].map(([k, t]) => [k, t.data]));
}

test('--ema: the training is unchanged, the average is the closed form over the raw weights of every step, and it survives a resume exactly', { skip }, async () => {
  const d = 0.6, steps = 3;
  // the raw weights after 0..3 steps, from a run without an average stopped after each step
  const thetas: Map<string, Float32Array>[] = [];
  const plain = path.join(tmp, 'plain');
  await train(config(plain, { iterations: 0 }));
  thetas.push(await raw(plain));
  for (let s = 1; s <= steps; s++) {
    await train(config(plain, { iterations: s }), {}, plain);
    thetas.push(await raw(plain));
  }
  // with --ema, stopped after 2 steps and resumed to 3, validating at every step
  const val = { valContent: path.join(SHARED, 'data/content/test'), valStyle: path.join(SHARED, 'data/style/test'), valPairs: 2, valEvery: 1 };
  const averaged = path.join(tmp, 'averaged');
  let n = 0;
  await train(config(averaged, { iterations: steps, ema: d, ...val }), { shouldStop: () => ++n === 2 });
  await train(config(averaged, { iterations: steps, ema: d, ...val }), {}, averaged);
  const ck = await loadCheckpoint(averaged);
  const { tensors: dec } = await readSafetensors(path.join(averaged, 'decoder.safetensors'));
  const { tensors: best } = await readSafetensors(path.join(averaged, 'decoder.best.safetensors'));
  let differs = false;
  for (const [name, t3] of thetas[steps]) {
    assert.deepEqual(ck.weights.get(name)!.data, t3, `${name}: the raw weights are the plain run's`);
    // d^3 θ0 + (1-d)(d^2 θ1 + d θ2 + θ3), in float64, against the float32 average
    const expected = t3.map((_, i) => d ** 3 * thetas[0].get(name)![i] + (1 - d) * (d * d * thetas[1].get(name)![i] + d * thetas[2].get(name)![i] + thetas[3].get(name)![i]));
    const got = ck.ema!.get(name)!;
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) <= 1e-6 * (1 + Math.abs(expected[i])), `${name}[${i}]: ${got[i]} vs ${expected[i]}`);
    assert.deepEqual(dec.get(name)!.data, got, `${name}: decoder.safetensors is the average`);
    differs ||= got.some((v, i) => v !== t3[i]);
  }
  assert.ok(differs, 'the average differs from the last weights');
  // every validation measured the average; the best is one of them
  const vals = readFileSync(path.join(averaged, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { val_loss?: number; val_ema?: number }).filter((l) => l.val_loss !== undefined);
  assert.equal(vals.length, steps);
  assert.ok(vals.every((v) => v.val_ema === d));
  assert.ok(best.size > 0);
});
