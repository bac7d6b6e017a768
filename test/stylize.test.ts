// Stylisation behaviour with the real cd16x weights: sizes, tiles, masks, interpolation.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { before, after, test } from 'node:test';
import { readImage, resizeImage, type RgbImage } from '../src/image/io.js';
import { loadModel, type StyleModel } from '../src/stylize/style-model.js';
import { planTiles } from '../src/stylize/model.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;
const EX = (f: string) => path.resolve(import.meta.dirname, '../examples', f);

let model: StyleModel;
let content: RgbImage;
before(async () => {
  if (skip) return;
  model = await loadModel('cd16x-r41', { modelsDir: MODELS_DIR, threads: 2 });
  content = await readImage(EX('chelsea.jpg'));
});
after(async () => { await model?.dispose(); });

function maxDiff(a: RgbImage, b: RgbImage): { max: number; mean: number } {
  let max = 0, sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    max = Math.max(max, d); sum += d;
  }
  return { max, mean: sum / a.data.length };
}

test('output has the content size, odd sizes included', { skip }, async () => {
  for (const [w, h] of [[451, 300], [97, 61], [8, 8], [5, 3]]) {
    const c = await resizeImage(content, w, h);
    const out = await model.stylizeToImage(c, EX('scream.jpg'), { styleSize: 128 });
    assert.deepEqual([out.width, out.height], [w, h]);
    assert.ok(out.data.every(Number.isFinite));
  }
});

test('tiles stitch without seams: tiled output matches the whole-image output', { skip }, async () => {
  const c = await resizeImage(content, 300, 200);
  const style = await model.styleStats(EX('scream.jpg'), { styleSize: 128 });
  const whole = await model.stylizeToImage(c, [style]);
  let tiles = 0;
  const tiled = await model.stylizeToImage(c, [style], { tileSize: 64, onTile: (stage, _d, n) => { if (stage === 'encode') tiles = n; } });
  assert.ok(tiles >= 12, `expected many tiles, got ${tiles}`);
  const d = maxDiff(whole, tiled);
  assert.ok(d.mean < 2e-3 && d.max < 0.05, `tiled vs whole: mean ${d.mean}, max ${d.max}`);
});

test('the memory plan tiles a 4000x3000 photo under a 2 GB budget and not a small one', { skip }, () => {
  assert.equal(planTiles(model.network, 504, 504, 4 * 1024 ** 3).tile, 0);
  const plan = planTiles(model.network, 3000, 4000, 2 * 1024 ** 3);
  assert.ok(plan.tile > 0 && plan.tile % 64 === 0, `tile ${plan.tile}`);
});

test('style interpolation: weights 1,0 equal the first style alone', { skip }, async () => {
  const c = await resizeImage(content, 128, 96);
  const s1 = await model.styleStats(EX('scream.jpg'), { styleSize: 128 });
  const s2 = await model.styleStats(EX('coffee.jpg'), { styleSize: 128 });
  const only1 = await model.stylizeToImage(c, [s1]);
  const mixed10 = await model.stylizeToImage(c, [s1, s2], { styleWeights: [1, 0] });
  const mixed55 = await model.stylizeToImage(c, [s1, s2], { styleWeights: [0.5, 0.5] });
  assert.ok(maxDiff(only1, mixed10).max < 1e-5);
  assert.ok(maxDiff(only1, mixed55).mean > 1e-3);
});

test('mask: white half takes style 1, black half style 2', { skip }, async () => {
  const c = await resizeImage(content, 128, 96);
  const s1 = await model.styleStats(EX('scream.jpg'), { styleSize: 128 });
  const s2 = await model.styleStats(EX('coffee.jpg'), { styleSize: 128 });
  const mask = new Float32Array(128 * 96);
  for (let y = 0; y < 96; y++) for (let x = 0; x < 64; x++) mask[y * 128 + x] = 1;
  const masked = await model.stylizeToImage(c, [s1, s2], { mask });
  const only1 = await model.stylizeToImage(c, [s1]);
  const only2 = await model.stylizeToImage(c, [s2]);
  const region = (img: RgbImage, x0: number, x1: number) => {
    const out: number[] = [];
    for (let ch = 0; ch < 3; ch++) for (let y = 16; y < 80; y++) for (let x = x0; x < x1; x++) out.push(img.data[ch * 128 * 96 + y * 128 + x]);
    return out;
  };
  const dist = (a: number[], b: number[]) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
  // left (white) is closer to style 1's result, right (black) to style 2's
  assert.ok(dist(region(masked, 8, 48), region(only1, 8, 48)) < dist(region(masked, 8, 48), region(only2, 8, 48)));
  assert.ok(dist(region(masked, 80, 120), region(only2, 80, 120)) < dist(region(masked, 80, 120), region(only1, 80, 120)));
});

test('preserve colour keeps the content mean colour closer than plain stylisation', { skip }, async () => {
  const c = await resizeImage(content, 128, 96);
  const plain = await model.stylizeToImage(c, EX('scream.jpg'), { styleSize: 128 });
  const kept = await model.stylizeToImage(c, EX('scream.jpg'), { styleSize: 128, preserveColor: true });
  const means = (img: RgbImage) => [0, 1, 2].map((ch) => img.data.subarray(ch * img.width * img.height, (ch + 1) * img.width * img.height).reduce((a, b) => a + b, 0) / (img.width * img.height));
  const dc = (img: RgbImage) => means(img).reduce((s, m, i) => s + Math.abs(m - means(c)[i]), 0);
  assert.ok(dc(kept) < dc(plain), `colour shift kept ${dc(kept)} vs plain ${dc(plain)}`);
});
