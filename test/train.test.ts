// adain train end to end on tiny crops: learning, exact resume, NaN stop, Ctrl-C.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../src/weights/safetensors.js';
import { train } from '../src/train/trainer.js';
import { tinyTrainConfig } from './helpers/train-config.js';
import { UserError } from '../src/errors.js';
import { JudgeValidation, judgeImproves } from '../src/train/judge-validation.js';
import type { TrainingBatch } from '../src/train/prefetch.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const skip = existsSync(path.join(SHARED, 'models')) ? false : `../shared not found at ${SHARED}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-train-'));

const config = tinyTrainConfig;

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readSafetensors(path.join(dir, 'decoder.safetensors'));
  return new Map([...tensors].map(([k, t]) => [k, t.data]));
}

test('training on a fixed subset lowers the loss', { skip }, async () => {
  const out = path.join(tmp, 'learn');
  const losses: number[] = [];
  await train(config(out, { subset: 2, iterations: 30, lr: 2e-3, valContent: path.join(SHARED, 'data/content/test'), valStyle: path.join(SHARED, 'data/style/test'), valEvery: 10 }), { onStep: (_s, v) => losses.push(v.loss) });
  const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3, last = losses.slice(-3).reduce((a, b) => a + b) / 3;
  assert.ok(last < 0.7 * first, `loss ${first} -> ${last}`);
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n');
  assert.equal(log.length, 33); // 30 steps + 3 validations
  const best = await readSafetensors(path.join(out, 'decoder.best.safetensors'));
  const vals = log.map((l) => JSON.parse(l) as { step: number; val_loss?: number }).filter((l) => l.val_loss !== undefined);
  const bestStep = vals.reduce((a, b) => (b.val_loss! < a.val_loss! ? b : a)).step;
  assert.equal(best.metadata.step, String(bestStep));
  assert.ok(readdirSync(out).some((f) => /^val_\d+\.png$/.test(f)));
  assert.ok(readdirSync(out).some((f) => f.startsWith('events.out.tfevents.')));
});

test('--best-by judge: decoder.best follows the judge\'s style distance on the validation pairs, within --best-max-content', { skip }, async () => {
  const val = { valContent: path.join(SHARED, 'data/content/test'), valStyle: path.join(SHARED, 'data/style/test'), valEvery: 5, valPairs: 4 };
  const out = path.join(tmp, 'judge');
  await train(config(out, { subset: 2, iterations: 20, lr: 2e-3, bestBy: 'judge', ...val }));
  const vals = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; val_loss?: number; val_judge_style?: number; val_judge_content?: number })
    .filter((l) => l.val_loss !== undefined);
  assert.equal(vals.length, 4);
  for (const v of vals) assert.ok(v.val_judge_style! > 0 && v.val_judge_content! > 0, JSON.stringify(v));
  const best = await readSafetensors(path.join(out, 'decoder.best.safetensors'));
  assert.equal(best.metadata.step, String(vals.reduce((a, b) => (b.val_judge_style! < a.val_judge_style! ? b : a)).step));
  // a content cap no validation meets keeps no decoder as the best
  const capped = path.join(tmp, 'judge-capped');
  await train(config(capped, { iterations: 5, bestBy: 'judge', bestMaxContent: 1e-6, ...val }));
  assert.ok(!existsSync(path.join(capped, 'decoder.best.safetensors')));
  await assert.rejects(train(config(path.join(tmp, 'judge-noval'), { bestBy: 'judge' })), (e: unknown) => e instanceof UserError && /--best-by judge needs a validation set/.test(e.message));
});

test('JudgeValidation: an output equal to its style image has style distance 0, one equal to its content image content distance 0', { skip }, async () => {
  const S = 32, B = 2;
  const rand = (seed: number) => Float32Array.from({ length: B * 3 * S * S }, (_, i) => ((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1 + 1) % 1);
  const batch = { index: 0, content: rand(1), style: rand(2), contentFiles: [], styleFiles: [] } as unknown as TrainingBatch;
  const jv = await JudgeValidation.create([batch], B, S, { threads: 1, modelsDir: path.join(SHARED, 'models') });
  try {
    const asStyle = await jv.measure([batch.style]), asContent = await jv.measure([batch.content]);
    assert.ok(asStyle.style < 1e-6 && asStyle.content > 0.1, JSON.stringify(asStyle));
    assert.ok(asContent.content < 1e-6 && asContent.style > 0.1, JSON.stringify(asContent));
  } finally {
    await jv.dispose();
  }
  assert.equal(judgeImproves({ style: 1, content: 5 }, 2), true);
  assert.equal(judgeImproves({ style: 1, content: 5 }, 2, 4), false);
  assert.equal(judgeImproves({ style: 3, content: 1 }, 2), false);
});

test('--resume continues exactly: 3 + 3 steps equal 6 steps', { skip }, async () => {
  const straight = path.join(tmp, 'straight'), split = path.join(tmp, 'split');
  await train(config(straight));
  let n = 0;
  const r = await train(config(split), { shouldStop: () => ++n === 3 });
  assert.equal(r.reason, 'interrupted');
  assert.equal(r.step, 3);
  await train(config(split), {}, split);
  const a = await weights(straight), b = await weights(split);
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after resume`);
});

test('a NaN loss stops the run naming the step, and the last checkpoint stays intact', { skip }, async () => {
  const out = path.join(tmp, 'nan');
  await train(config(out, { iterations: 2 }));
  const before = await weights(out);
  // an absurd learning rate makes the decoder's output overflow within a few steps
  await assert.rejects(train(config(out, { iterations: 40, lr: 1e30, lrSchedule: 'inverse:0' }), {}, out), (e: unknown) => e instanceof UserError && /at step \d+/.test(e.message));
  const after = await weights(out);
  for (const [k, v] of before) assert.ok(after.get(k)!.every(Number.isFinite), `${k} not finite`);
  assert.ok(existsSync(path.join(out, 'checkpoint.safetensors')));
});

test('Ctrl-C writes a checkpoint that --resume can continue', { skip }, async () => {
  const out = path.join(tmp, 'sigint');
  const args = [path.join(ROOT, 'bin/adain.js'), 'train', '-c', path.join(SHARED, 'data/content/test'), '-s', path.join(SHARED, 'data/style/test'),
    '-o', out, '--models-dir', path.join(SHARED, 'models'), '-b', '2', '--crop', '32', '--load-size', '64', '-n', '100000', '--log-every', '1', '-q'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  // wait until a few steps are logged, then interrupt
  for (let i = 0; i < 600 && !(existsSync(path.join(out, 'log.jsonl')) && readFileSync(path.join(out, 'log.jsonl'), 'utf8').split('\n').length > 3); i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 130, stderr); // interrupted is not finished: scripts must be able to tell
  assert.match(stderr, /interrupted at step \d+; resume with --resume/);
  assert.ok(existsSync(path.join(out, 'checkpoint.safetensors')));
});

test('--tv-weight and --grid-weight add their terms to the loss, logged unweighted', { skip }, async () => {
  const out = path.join(tmp, 'terms');
  const steps: { loss: number; content_loss: number; style_loss: number; tv_loss: number; grid_loss: number }[] = [];
  await train(config(out, { iterations: 2, tvWeight: 30, gridWeight: 500 }), { onStep: (_s, v) => steps.push(v) });
  for (const v of steps) {
    assert.ok(v.tv_loss > 0 && v.grid_loss > 0, JSON.stringify(v));
    const sum = v.content_loss + 10 * v.style_loss + 30 * v.tv_loss + 500 * v.grid_loss;
    assert.ok(Math.abs(v.loss - sum) <= 1e-4 * v.loss, `loss ${v.loss} vs the weighted sum ${sum}`);
  }
  const logged = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  assert.ok(logged.every((l) => typeof l.tv_loss === 'number' && typeof l.grid_loss === 'number'));
});

test('--loss-network vgg19-r31: the style loss is the judge\'s style distance (the same VGG-19 layers), not the encoder\'s; --photo-content-weight adds the judge\'s content distance', { skip }, async () => {
  const val = { valContent: path.join(SHARED, 'data/content/test'), valStyle: path.join(SHARED, 'data/style/test'), valEvery: 1, valPairs: 4, bestBy: 'judge' as const };
  // cd16x-r31's style layers are all within the loss network's: the style loss is VGG-19's alone
  const run = async (name: string, lossNetwork?: string) => {
    const out = path.join(tmp, name);
    await train(config(out, { encoder: 'cd16x-r31', init: path.join(ROOT, 'models/cd16x-r31.decoder.safetensors'), crop: 64, loadSize: 64, iterations: 1, lr: 1e-12, lossNetwork, ...val }));
    const v = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).find((l) => l.val_loss !== undefined)!;
    return { style: v.val_style_loss, judge: v.val_judge_style };
  };
  const measured = await run('loss-network', 'vgg19-r31');
  // the judge clamps the output to [0,1] first; a trained decoder's output barely leaves it
  assert.ok(Math.abs(measured.style - measured.judge) <= 0.03 * measured.judge, `style loss ${measured.style} vs judge ${measured.judge}`);
  const own = await run('own-network');
  assert.ok(Math.abs(own.style - own.judge) > 0.3 * own.judge, `without a loss network the style loss (${own.style}) is the encoder's, not the judge's (${own.judge})`);
  // --photo-content-weight: with the judge as the loss network, the photo term is the judge's content distance
  const photoOut = path.join(tmp, 'photo-content');
  const steps: { loss: number; content_loss: number; style_loss: number; photo_content_loss: number }[] = [];
  await train(config(photoOut, { encoder: 'cd16x-r31', init: path.join(ROOT, 'models/cd16x-r31.decoder.safetensors'), crop: 64, loadSize: 64, iterations: 1, lr: 1e-12, lossNetwork: 'vgg19-r31', photoContentWeight: 3, ...val }), { onStep: (_s, v) => steps.push(v) });
  const pv = readFileSync(path.join(photoOut, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).find((l) => l.val_loss !== undefined)!;
  assert.ok(Math.abs(pv.val_photo_content_loss - pv.val_judge_content) <= 0.03 * pv.val_judge_content, `photo content loss ${pv.val_photo_content_loss} vs judge content ${pv.val_judge_content}`);
  for (const v of steps) {
    const sum = v.content_loss + 10 * v.style_loss + 3 * v.photo_content_loss;
    assert.ok(v.photo_content_loss > 0 && Math.abs(v.loss - sum) <= 1e-4 * v.loss, `loss ${v.loss} vs the weighted sum ${sum}`);
  }
  await assert.rejects(train(config(path.join(tmp, 'photo-no-network'), { photoContentWeight: 1 })), (e: unknown) => e instanceof UserError && /--photo-content-weight .* --loss-network/.test(e.message));
  await assert.rejects(train(config(path.join(tmp, 'loss-network-recon'), { mode: 'reconstruct', lossNetwork: 'vgg19-r31' })), (e: unknown) => e instanceof UserError && /--loss-network .* needs --mode style/.test(e.message));
  await assert.rejects(train(config(path.join(tmp, 'loss-network-unknown'), { lossNetwork: 'vgg99' })), (e: unknown) => e instanceof UserError && /unknown model "vgg99"/.test(e.message));
});
