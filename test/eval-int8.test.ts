// int8 rows in adain eval: NAME@int8 / NAME@fp32 model specs and --precision, parsed and expanded
// (no networks), an uncalibrated int8 model refused before any work, and a tiny eval (2 pairs at
// 64x64) with an fp32 and an int8 row of the same model.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { evalCommand } from '../src/cli/eval-command.js';
import { UserError } from '../src/errors.js';
import { parseModelSpec, parsePrecisionList, runEval, withPrecisions } from '../src/eval/run.js';
import { findModel } from '../src/models/registry.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');
const MODELS_DIR = path.join(SHARED, 'models');
const CONTENT_DIR = path.join(SHARED, 'data/content/test');
const STYLE_DIR = path.join(SHARED, 'data/style/test');
const skip = !existsSync(path.join(MODELS_DIR, findModel('cd16x-r41').encoder.weights.file)) ? `the cd16x encoder not found in ${MODELS_DIR}`
  : !existsSync(path.join(ROOT, 'models/cd16x-r41.calibration.json')) ? 'models/cd16x-r41.calibration.json not found'
  : !existsSync(path.join(MODELS_DIR, 'vgg19-normalised/vgg_normalised_conv3_1.pth')) ? `the judge's weights not found in ${MODELS_DIR}`
  : !existsSync(CONTENT_DIR) || !existsSync(STYLE_DIR) ? 'test data not found' : false;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-eval-int8-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('NAME@int8 / NAME@fp32 and --precision: row names, expansion, refusals', () => {
  assert.deepEqual(parseModelSpec('cd16x-r41'), { name: 'cd16x-r41', model: 'cd16x-r41' });
  assert.deepEqual(parseModelSpec('cd16x-r41@int8'), { name: 'cd16x-r41@int8', model: 'cd16x-r41', precision: 'int8' });
  assert.deepEqual(parseModelSpec(' cd16x-r41@fp32 '), { name: 'cd16x-r41@fp32', model: 'cd16x-r41', precision: 'fp32' });
  assert.throws(() => parseModelSpec('cd16x-r41@auto'), (e: Error) => e instanceof UserError && /--models cd16x-r41@auto: unknown precision "auto"; use fp32 or int8/.test(e.message));
  assert.throws(() => parseModelSpec('cd16x-r41@'), UserError);
  assert.throws(() => parseModelSpec('nope@int8'), UserError);
  assert.deepEqual(parsePrecisionList('int8, fp32,int8'), ['int8', 'fp32']);
  assert.throws(() => parsePrecisionList('fp16'), (e: Error) => e instanceof UserError && /--precision fp16/.test(e.message));
  const entries = withPrecisions([parseModelSpec('cd16x-r41'), parseModelSpec('vgg19-r31@fp32'), { name: 'mine', model: 'cd16x-r41', decoder: 'd.safetensors' }], ['fp32', 'int8']);
  assert.deepEqual(entries.map((e) => [e.name, e.precision]), [
    ['cd16x-r41@fp32', 'fp32'], ['cd16x-r41@int8', 'int8'], ['vgg19-r31@fp32', 'fp32'], ['mine@fp32', 'fp32'], ['mine@int8', 'int8'],
  ]);
  assert.equal(entries[4].decoder, 'd.safetensors');
  // the same row asked for twice runs once
  assert.deepEqual(withPrecisions([parseModelSpec('cd16x-r41'), parseModelSpec('cd16x-r41@int8')], ['int8']).map((e) => e.name), ['cd16x-r41@int8']);
  assert.deepEqual(withPrecisions([parseModelSpec('cd16x-r41')], undefined).map((e) => e.name), ['cd16x-r41']);
});

test('an int8 row of a model without a calibration is refused before any work, naming the fix', { skip }, async () => {
  const started = performance.now();
  await assert.rejects(runEval({
    contentDir: CONTENT_DIR, styleDir: STYLE_DIR, contents: 1, styles: 1, seed: 0, size: 32,
    models: [parseModelSpec('cd16x-r41'), parseModelSpec('vgg19-r31@int8')], optimizePairs: 0, optimizeIterations: [],
    speedRuns: 0, sheetContents: 0, sheetStyles: 0, thumb: 32, threads: 1, modelsDir: MODELS_DIR, download: false,
  }), (e: Error) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /^vgg19-r31@int8: no int8 calibration for .*; run `adain calibrate --model vgg19-r31` once, or evaluate it at fp32$/);
    return true;
  });
  assert.ok(performance.now() - started < 5000, 'refused before the pairs are judged');
});

test('adain eval -m cd16x-r41,cd16x-r41@int8 --json: an int8 row beside the fp32 one, with a precision field; close but not equal', { skip }, async () => {
  let stdout = '';
  const out = path.join(tmp, 'eval-out');
  await evalCommand({ write: (c: string | Uint8Array) => { stdout += String(c); return true; } }).exitOverride().parseAsync([
    '-m', 'cd16x-r41,cd16x-r41@int8', '--content', CONTENT_DIR, '--style', STYLE_DIR, '--contents', '2', '--styles', '1', '--size', '64',
    '--no-optimize', '--speed-runs', '0', '--json', '--threads', '1', '--models-dir', MODELS_DIR, '--no-download', '-q', '--out', out,
    '--sheet-contents', '0',
  ], { from: 'user' });
  const rows = JSON.parse(stdout) as Record<string, unknown>[];
  assert.deepEqual(rows.map((r) => [r.model, r.precision]), [['content-unchanged', undefined], ['cd16x-r41', undefined], ['cd16x-r41@int8', 'int8']]);
  assert.deepEqual(Object.keys(rows[2]).sort(), ['cfsd', 'content_distance', 'grid_score', 'model', 'ms_512', 'pairs', 'precision', 'style_distance']);
  const [fp32, int8] = [rows[1], rows[2]];
  for (const k of ['style_distance', 'content_distance'] as const) {
    const a = fp32[k] as number, b = int8[k] as number;
    // the same numbers would mean the int8 network never ran
    assert.notEqual(a, b, k);
    assert.ok(Math.abs(b / a - 1) < 0.1, `${k}: int8 ${b} vs fp32 ${a}`);
  }
  const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { rows: { model: string; precision?: string }[]; notes: Record<string, string> };
  assert.equal(results.rows.find((r) => r.model === 'cd16x-r41@int8')?.precision, 'int8');
  assert.match(results.notes['cd16x-r41@int8'], /AdaIN decoder \(cd16x to relu4_1\), int8$/);
});

test('adain eval --precision int8 -m cd16x-r41: the row is cd16x-r41@int8 in the table', { skip }, async () => {
  let stdout = '';
  await evalCommand({ write: (c: string | Uint8Array) => { stdout += String(c); return true; } }).exitOverride().parseAsync([
    '-m', 'cd16x-r41', '--precision', 'int8', '--content', CONTENT_DIR, '--style', STYLE_DIR, '--contents', '1', '--styles', '1', '--size', '32',
    '--no-optimize', '--speed-runs', '0', '--threads', '1', '--models-dir', MODELS_DIR, '--no-download', '-q', '--no-sheet',
  ], { from: 'user' });
  const names = stdout.split('\n').slice(2).map((l) => l.split(/\s+/)[0]).filter(Boolean);
  assert.deepEqual(names, ['content-unchanged', 'cd16x-r41@int8'], stdout);
});
