// adain eval: the judge's two distances on hand-computable feature maps, the seeded pair
// selection, the real judge on an unchanged image, and a small end-to-end run (2 x 2 pairs at
// 32x32) through the command and through runEval with a tiny optimisation subset.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { evalCommand } from '../src/cli/eval-command.js';
import { clampImage, contentDistance, Judge, styleDistance } from '../src/eval/judge.js';
import { selectPairs } from '../src/eval/pairs.js';
import { formatTable, optimizationEquivalents, parseDecoderEntry, runEval, type EvalReport, type EvalRow } from '../src/eval/run.js';
import { UserError } from '../src/errors.js';
import type { RgbImage } from '../src/image/io.js';
import { channelStats, type FeatureMap } from '../src/stylize/features.js';

const SHARED = path.resolve(import.meta.dirname, '../../shared');
const MODELS_DIR = path.join(SHARED, 'models');
const JUDGE_FILE = path.join(MODELS_DIR, 'vgg19-normalised/vgg_normalised_conv3_1.pth');
const CONTENT_DIR = path.join(SHARED, 'data/content/test');
const STYLE_DIR = path.join(SHARED, 'data/style/test');
const noJudge = existsSync(JUDGE_FILE) ? false : `${JUDGE_FILE} not found`;
const noData = noJudge || (existsSync(CONTENT_DIR) && existsSync(STYLE_DIR) ? false : `${CONTENT_DIR} or ${STYLE_DIR} not found`);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-eval-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const map = (c: number, h: number, w: number, values: number[]): FeatureMap => ({ c, h, w, data: Float32Array.from(values) });

test('style and content distance on hand-computed feature maps', () => {
  // a: channel 0 = [0, 2] (mean 1, variance 1), channel 1 = [1, 1] (mean 1, variance 0)
  // b: channel 0 = [1, 1] (mean 1, variance 0), channel 1 = [3, 3] (mean 3, variance 0)
  const a = map(2, 1, 2, [0, 2, 1, 1]);
  const b = map(2, 1, 2, [1, 1, 3, 3]);
  const sa = channelStats(a), sb = channelStats(b);
  const eps = 1e-5;
  // per layer: mean over channels of (mu - mu_s)^2, plus the same for sigma (eps inside the sqrt)
  const layer = (0 + 4) / 2 + ((Math.sqrt(1 + eps) - Math.sqrt(eps)) ** 2 + 0) / 2;
  assert.ok(Math.abs(styleDistance([sa], [sb]) - layer) < 1e-6, `one layer: ${styleDistance([sa], [sb])} vs ${layer}`);
  assert.ok(Math.abs(styleDistance([sa, sa], [sb, sb]) - 2 * layer) < 1e-6, 'layers are summed');
  assert.equal(styleDistance([sa, sb], [sa, sb]), 0);
  // content: mean over the 4 elements of the squared difference = (1 + 1 + 4 + 4) / 4
  assert.equal(contentDistance(a, b), 2.5);
  assert.equal(contentDistance(a, a), 0);
  assert.throws(() => contentDistance(a, map(1, 2, 2, [0, 0, 0, 0])), RangeError);
});

test('clampImage clamps to [0,1] and maps NaN to 0', () => {
  const img: RgbImage = { width: 1, height: 1, data: Float32Array.from([-0.5, 1.5, NaN]) };
  assert.deepEqual([...clampImage(img).data], [0, 1, 0]);
});

test('the pair selection is seeded, fixed and covers every content x style pair', () => {
  const contents = Array.from({ length: 30 }, (_, i) => `c${String(i).padStart(2, '0')}.jpg`);
  const styles = Array.from({ length: 10 }, (_, i) => `s${i}.jpg`);
  const a = selectPairs(contents, styles, { contents: 5, styles: 20, seed: 7, subset: 6 });
  const b = selectPairs(contents, styles, { contents: 5, styles: 20, seed: 7, subset: 6 });
  assert.deepEqual(a, b);
  assert.equal(a.contents.length, 5);
  assert.equal(a.styles.length, 10, 'all styles when there are fewer than asked for');
  assert.equal(new Set(a.contents).size, 5);
  assert.equal(a.subset.length, 6);
  assert.equal(new Set(a.subset.map(([c, s]) => `${c},${s}`)).size, 6, 'distinct pairs');
  assert.ok(a.subset.every(([c, s]) => c < 5 && s < 10));
  assert.notDeepEqual(selectPairs(contents, styles, { contents: 5, styles: 20, seed: 8, subset: 6 }).contents, a.contents);
  assert.equal(selectPairs(contents, styles, { contents: 2, styles: 2, seed: 0, subset: 10 }).subset.length, 4, 'subset capped at all pairs');
});

test('--decoder NAME=MODEL:FILE', () => {
  assert.deepEqual(parseDecoderEntry('mine=cd16x-r41:runs/x/decoder.safetensors'), { name: 'mine', model: 'cd16x-r41', decoder: 'runs/x/decoder.safetensors' });
  assert.throws(() => parseDecoderEntry('mine:cd16x-r41'), UserError);
  assert.throws(() => parseDecoderEntry('mine=nope:file'), UserError);
});

test('the real judge: an unchanged image is at distance 0 from itself; outputs are clamped first', { skip: noJudge }, async () => {
  const judge = await Judge.load({ file: JUDGE_FILE, threads: 1 });
  try {
    const size = 32;
    const img: RgbImage = { width: size, height: size, data: Float32Array.from({ length: 3 * size * size }, (_, i) => (Math.sin(i * 0.37) + 1) / 2) };
    const m = await judge.measure(img, await judge.contentTarget(img), await judge.styleTarget(img));
    assert.equal(m.content, 0);
    assert.ok(m.style < 1e-9, `style distance to itself ${m.style}`);
    const over: RgbImage = { ...img, data: img.data.map((v, i) => (i % 7 === 0 ? v + 2 : v)) };
    const target = await judge.contentTarget(img), style = await judge.styleTarget(img);
    assert.deepEqual(await judge.measure(over, target, style), await judge.measure(clampImage(over), target, style));
  } finally {
    await judge.dispose();
  }
});

/** Runs `adain eval ...` in-process and returns what it printed on stdout. */
async function evalCli(args: string[]): Promise<string> {
  let out = '';
  const stdout = { write: (chunk: string | Uint8Array) => { out += String(chunk); return true; } };
  await evalCommand(stdout).exitOverride().parseAsync(args, { from: 'user' });
  return out;
}

test('adain eval --json on 2 contents x 2 styles at 32x32 (no optimisation): rows and contact sheet', { skip: noData }, async () => {
  const out = path.join(tmp, 'eval-out');
  const stdout = await evalCli([
    '--content', CONTENT_DIR, '--style', STYLE_DIR, '--contents', '2', '--styles', '2', '--size', '32', '--no-optimize',
    '--speed-runs', '0', '--json', '--threads', '1', '--models-dir', MODELS_DIR, '--out', out, '--thumb', '32', '-q', '--no-download',
  ]);
  const rows = JSON.parse(stdout) as Record<string, unknown>[];
  assert.ok(rows.length >= 2, `rows: ${stdout}`);
  for (const r of rows) {
    assert.deepEqual(Object.keys(r).sort(), ['cfsd', 'content_distance', 'grid_score', 'model', 'ms_512', 'pairs', 'style_distance']);
    assert.equal(typeof r.model, 'string');
    assert.equal(r.pairs, 'all');
    assert.ok(typeof r.style_distance === 'number' && r.style_distance >= 0);
    assert.ok(typeof r.content_distance === 'number' && r.content_distance >= 0);
    assert.equal(r.ms_512, null, 'no timing with --speed-runs 0');
  }
  const unchanged = rows.find((r) => r.model === 'content-unchanged')!;
  assert.equal(unchanged.content_distance, 0);
  assert.ok((unchanged.style_distance as number) > 0);
  const meta = await sharp(path.join(out, 'contact-sheet.png')).metadata();
  assert.ok(meta.width > 2 * 32 * (rows.length - 1) && meta.height > 3 * 32, `sheet ${meta.width}x${meta.height}`);
  const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { rows: unknown[]; contents: string[] };
  assert.equal(results.rows.length, rows.length);
  assert.equal(results.contents.length, 2);
});

test('runEval with a 1-pair optimisation subset: like-for-like subset rows and optimize-N rows', { skip: noData }, async () => {
  const report = await runEval({
    contentDir: CONTENT_DIR, styleDir: STYLE_DIR, contents: 2, styles: 1, seed: 3, size: 32,
    models: [{ name: 'cd16x-r41', model: 'cd16x-r41' }], optimizePairs: 1, optimizeIterations: [5, 2],
    speedRuns: 0, sheetContents: 2, sheetStyles: 1, thumb: 32, threads: 1, modelsDir: MODELS_DIR, download: false,
    out: path.join(tmp, 'eval-opt'),
  });
  assert.deepEqual(report.rows.map((r) => `${r.model}/${r.pairs}`), [
    'content-unchanged/all', 'cd16x-r41/all', 'content-unchanged/subset', 'cd16x-r41/subset', 'optimize-2/subset', 'optimize-5/subset',
  ]);
  const row = (name: string) => report.rows.find((r) => r.model === name && r.pairs === 'subset')!;
  assert.ok(row('optimize-5').style_distance < row('content-unchanged').style_distance, 'optimisation lowers the style distance');
  assert.ok(row('optimize-5').style_distance <= row('optimize-2').style_distance);
  assert.equal(report.subset.length, 1);
  assert.ok(existsSync(path.join(tmp, 'eval-opt', 'optimize-sheet.png')));
});

test('optimizationEquivalents places each model on the optimisation curve', () => {
  const r = (model: string, style: number): EvalRow => ({ model, pairs: 'subset', style_distance: style, content_distance: 1, ms_512: null });
  const report: EvalReport = {
    rows: [
      { ...r('fast', 9), pairs: 'all' }, r('content-unchanged', 10), r('fast', 2.5), r('slow', 0.05), r('weak', 9.5),
      r('optimize-100', 0.2), r('optimize-10', 3), r('optimize-50', 1),
    ],
    notes: {}, size: 32, seed: 0, contents: ['a'], styles: ['b'], subset: [{ content: 'a', style: 'b' }], files: [],
  };
  const eq = optimizationEquivalents(report);
  assert.deepEqual(eq.map((e) => [e.model, e.atLeast?.model ?? null, e.below?.model ?? null]), [
    ['fast', 'optimize-10', 'optimize-50'], ['slow', 'optimize-100', null], ['weak', null, 'optimize-10'],
  ]);
  const text = formatTable(report);
  assert.match(text, /fast: 2\.500, between optimize-10 \(3\.000\) and optimize-50 \(1\.000\)/);
  assert.match(text, /weak: 9\.500, above optimize-10 \(3\.000\)/);
  assert.deepEqual(optimizationEquivalents({ ...report, rows: report.rows.filter((x) => !x.model.startsWith('optimize')) }), []);
});
