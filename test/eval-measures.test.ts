// The two structure measures of `adain eval`: grid_score must catch a faint synthetic grid and
// leave clean photos near zero; cfsd must match its definition computed directly.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Cfsd } from '../src/eval/cfsd.js';
import { gridScore, periodicity } from '../src/eval/grid-score.js';
import { loadSquare } from '../src/eval/pairs.js';
import type { RgbImage } from '../src/image/io.js';
import { mulberry32 } from '../src/train/init.js';

const EXAMPLES = path.resolve(import.meta.dirname, '../examples');

/** `img` plus a +-amplitude luminance checker of the given period (2 px squares for period 4). */
function withChecker(img: RgbImage, period: number, amplitude: number, axis: 'xy' | 'x' = 'xy'): RgbImage {
  const { width: w, height: h } = img;
  const data = new Float32Array(img.data);
  const half = period / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cell = axis === 'x' ? Math.floor(x / half) : Math.floor(x / half) + Math.floor(y / half);
      const v = cell % 2 ? amplitude : -amplitude;
      for (let c = 0; c < 3; c++) data[c * w * h + y * w + x] += v;
    }
  }
  return { width: w, height: h, data };
}

test('grid_score: a faint 2/4/8-px checker scores far above the clean photo, which scores near zero', async () => {
  const photos = await Promise.all(['chelsea.jpg', 'coffee.jpg', 'astronaut.jpg'].map((f) => loadSquare(path.join(EXAMPLES, f), 256)));
  const [chelsea, coffee] = photos;
  for (const p of photos) assert.ok(periodicity(p) < 1.5, `a clean photo has periodicity ${periodicity(p)}`);
  // another clean photo as the output: nothing periodic in excess of the inputs
  assert.ok(gridScore(coffee, chelsea, chelsea) < 1, `clean output scored ${gridScore(coffee, chelsea, chelsea)}`);
  for (const period of [2, 4, 8]) {
    const faint = withChecker(chelsea, period, 0.01); // +-2.5 grey levels of 255
    const score = gridScore(faint, chelsea, coffee);
    assert.ok(score > 4, `a ${period}-px checker scored only ${score}`);
  }
  const stripes = gridScore(withChecker(chelsea, 4, 0.01, 'x'), chelsea, coffee);
  assert.ok(stripes > 2, `4-px vertical stripes scored ${stripes}`);
  // a grid the content already has is not the model's fault
  const gridded = withChecker(chelsea, 4, 0.01);
  assert.ok(gridScore(gridded, gridded, coffee) < 0.5);
});

/** The definition in float64: pool 2x2, unit vectors, cosine-similarity softmax rows, mean KL(content || output). */
function cfsdReference(out: Float32Array, content: Float32Array, c: number, h: number, w: number): number {
  const rows = (f: Float32Array) => {
    const n = (h / 2) * (w / 2);
    const v = Array.from({ length: n }, () => new Float64Array(c));
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h / 2; y++) {
        for (let x = 0; x < w / 2; x++) {
          let s = 0;
          for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += f[(ch * h + 2 * y + dy) * w + 2 * x + dx];
          v[y * (w / 2) + x][ch] = s / 4;
        }
      }
    }
    for (const p of v) {
      const norm = Math.sqrt(p.reduce((a, b) => a + b * b, 0));
      for (let i = 0; i < c; i++) p[i] /= norm;
    }
    return v.map((a) => {
      const sims = v.map((b) => a.reduce((acc, x, i) => acc + x * b[i], 0));
      const m = Math.max(...sims);
      const z = Math.log(sims.reduce((acc, s) => acc + Math.exp(s - m), 0)) + m;
      return sims.map((s) => s - z);
    });
  };
  const lo = rows(out), lc = rows(content);
  let total = 0;
  lc.forEach((row, i) => row.forEach((l, j) => { total += Math.exp(l) * (l - lo[i][j]); }));
  return total / lc.length;
}

test('cfsd: matches its definition; 0 for the same structure, larger for shuffled patches', async () => {
  const c = 6, h = 8, w = 12;
  const rng = mulberry32(5);
  const content = Float32Array.from({ length: c * h * w }, () => rng() * 2);
  const noisy = Float32Array.from(content, (v) => v + (rng() - 0.5) * 0.5);
  const shuffled = new Float32Array(content.length);
  // swap 2x2 blocks between the left and right halves: the same features, another layout
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) shuffled[(ch * h + y) * w + x] = content[(ch * h + y) * w + ((x + w / 2) % w)];
  }
  const map = (data: Float32Array) => ({ c, h, w, data });
  const m = await Cfsd.create(c, h, w, { threads: 1 });
  try {
    const same = await m.distance(map(content), map(content));
    assert.ok(Math.abs(same) < 1e-6, `identical maps: ${same}`);
    const scaled = await m.distance(map(Float32Array.from(content, (v) => 3 * v)), map(content));
    assert.ok(Math.abs(scaled) < 1e-6, `a uniform scale keeps every cosine: ${scaled}`);
    for (const out of [noisy, shuffled]) {
      const got = await m.distance(map(out), map(content));
      const want = cfsdReference(out, content, c, h, w);
      assert.ok(Math.abs(got - want) <= 1e-4 * want + 1e-7, `cfsd ${got} vs reference ${want}`);
    }
    assert.ok(cfsdReference(shuffled, content, c, h, w) > cfsdReference(noisy, content, c, h, w));
  } finally {
    await m.dispose();
  }
});
