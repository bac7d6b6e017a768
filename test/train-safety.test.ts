// What a training run must never lose: an earlier run in the same folder, the last good
// checkpoint after a fallback, and the log lines a checkpoint already covers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../src/errors.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { train, type TrainConfig } from '../src/train/trainer.js';
import { tinyTrainConfig } from './helpers/train-config.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const skip = existsSync(path.join(SHARED, 'models')) ? false : `../shared not found at ${SHARED}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-train-safety-'));
const CLI = path.join(ROOT, 'bin/adain.js');

const config = (out: string, over: Partial<TrainConfig> = {}): TrainConfig => tinyTrainConfig(out, { iterations: 2, checkpointEvery: 1, threads: 1, ...over });

const trainArgs = (out: string, ...more: string[]) => [CLI, 'train', '-c', path.join(SHARED, 'data/content/test'), '-s', path.join(SHARED, 'data/style/test'),
  '-o', out, '--models-dir', path.join(SHARED, 'models'), '-b', '2', '--crop', '32', '--load-size', '64', '-q', '-t', '1', ...more];

test('a new run in a folder that holds one is refused; --force starts over with a clean log', { skip }, async () => {
  const out = path.join(tmp, 'taken');
  await train(config(out));
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8');
  await assert.rejects(train(config(out, { iterations: 3 })), (e: unknown) => e instanceof UserError && e.message.includes(`--resume ${out}`) && e.message.includes('--force'));
  assert.equal(readFileSync(path.join(out, 'log.jsonl'), 'utf8'), log, 'the refused run touched the log');
  assert.equal((await loadCheckpoint(out)).step, 2);

  const cli = spawnSync(process.execPath, trainArgs(out, '-n', '3'), { encoding: 'utf8' });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /already holds a training run.*--resume/);

  writeFileSync(path.join(out, 'notes.txt'), 'mine');
  await train(config(out, { iterations: 1 }), {}, undefined, { force: true });
  const lines = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
  assert.deepEqual(lines.map((l) => l.step), [1], 'the old run\'s lines are gone');
  assert.equal((await loadCheckpoint(out)).step, 1);
  assert.equal(readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine', '--force deletes only run files');
});

test('after a fallback from a corrupt checkpoint, the next save keeps the good previous one', { skip }, async () => {
  const out = path.join(tmp, 'fallback');
  await train(config(out, { iterations: 2 })); // checkpoint (step 2) and prev (step 1)
  truncateSync(path.join(out, 'checkpoint.safetensors'), 100);
  const warnings: string[] = [];
  // one step more, so exactly one save: it must not rotate the corrupt file over step 1
  await train(config(out, { iterations: 2 }), { warn: (m) => warnings.push(m) }, out);
  assert.equal(warnings.length, 1);
  const prev = await loadCheckpoint(path.join(out, 'checkpoint.prev.safetensors'));
  assert.equal(prev.step, 1);
  assert.equal((await loadCheckpoint(out)).step, 2);
});

test('--resume with a corrupt checkpoint: the fallback warning once; with no previous one, no advice to use it', { skip }, async () => {
  const out = path.join(tmp, 'warn-once');
  await train(config(out, { iterations: 2 }));
  truncateSync(path.join(out, 'checkpoint.safetensors'), 100);
  const r = spawnSync(process.execPath, [CLI, 'train', '--resume', out, '-n', '2', '-q', '-t', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/resuming from the previous checkpoint/g)?.length, 1, r.stderr);

  const lone = path.join(tmp, 'lone');
  await train(config(lone, { iterations: 1 }));
  truncateSync(path.join(lone, 'checkpoint.safetensors'), 100);
  const e = spawnSync(process.execPath, [CLI, 'train', '--resume', lone, '-q'], { encoding: 'utf8' });
  assert.equal(e.status, 2, e.stderr);
  assert.doesNotMatch(e.stderr, /resume from the previous checkpoint/);
  assert.match(e.stderr, /no intact checkpoint\.prev\.safetensors/);
});

test('SIGKILL right after a checkpoint: the log and the TensorBoard events cover every step it holds', { skip }, async () => {
  const out = path.join(tmp, 'killed');
  const child = spawn(process.execPath, trainArgs(out, '-n', '100000', '--log-every', '1', '--checkpoint-every', '3'), { stdio: 'ignore' });
  const ckpt = path.join(out, 'checkpoint.safetensors');
  for (let i = 0; i < 3000 && !existsSync(ckpt); i++) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const { step } = await loadCheckpoint(out);
  assert.ok(step >= 3);
  const logged = new Set(readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step));
  for (let s = 1; s <= step; s++) assert.ok(logged.has(s), `step ${s} is in the checkpoint (step ${step}) but not in log.jsonl`);
  const events = readdirSync(out).find((f) => f.startsWith('events.out.tfevents.'))!;
  assert.ok(readFileSync(path.join(out, events)).includes('loss/total'), 'the event file holds no scalars');
});
