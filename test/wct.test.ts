// The whitening and colouring transform (stylize/wct.ts, --transform wct): against AdaIN where
// they must agree, against the style covariance it must reach, and through the faces.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseTransformList, withTransforms } from '../src/eval/run.js';
import { readImage, type RgbImage } from '../src/image/io.js';
import { adainInto, channelStats, mixStats, type FeatureMap } from '../src/stylize/features.js';
import { stylizeImage } from '../src/stylize/model.js';
import { loadModel, type StyleModel } from '../src/stylize/style-model.js';
import { featureCovariance, symmetricPower, wctInto } from '../src/stylize/wct.js';
import { WctRunner } from '../src/stylize/wct-runner.js';
import { Rng } from '../src/train/rng.js';
import { cliSkip, runAdain } from './helpers/cli.js';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;
const EX = (f: string) => path.resolve(import.meta.dirname, '../examples', f);

/** Channels mixed by a random matrix, so that their covariance is far from diagonal. */
function correlatedMap(seed: number, c: number, h: number, w: number, shift = 0): FeatureMap {
  const rng = new Rng(seed, 'wct');
  const n = h * w, z = new Float32Array(c * n), mix = Array.from({ length: c * c }, () => rng.next() * 2 - 1);
  for (let i = 0; i < z.length; i++) z[i] = rng.next() * 2 - 1;
  const data = new Float32Array(c * n);
  for (let i = 0; i < c; i++) for (let p = 0; p < n; p++) {
    let s = shift + i;
    for (let j = 0; j < c; j++) s += mix[i * c + j] * z[j * n + p];
    data[i * n + p] = s;
  }
  return { c, h, w, data };
}

test('one channel: wct is AdaIN (the same mean, std and eps)', () => {
  const f = correlatedMap(1, 1, 9, 7), s = correlatedMap(2, 1, 5, 6, 3);
  const a = new Float32Array(f.data.length), b = new Float32Array(f.data.length);
  for (const alpha of [1, 0.6]) {
    adainInto(a, f, channelStats(f), channelStats(s), alpha);
    wctInto(b, f, featureCovariance(f), featureCovariance(s), alpha);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5 * (1 + Math.abs(a[i])), `${i}: ${a[i]} vs ${b[i]}`);
  }
});

test('the output has the style mean and covariance; AdaIN matches only the diagonal', () => {
  const c = 6;
  const f = correlatedMap(3, c, 16, 16), s = correlatedMap(4, c, 12, 12, 2);
  const target = featureCovariance(s);
  const out = new Float32Array(f.data.length);
  wctInto(out, f, featureCovariance(f), target, 1);
  const got = featureCovariance({ ...f, data: out });
  for (let i = 0; i < c; i++) assert.ok(Math.abs(got.mean[i] - target.mean[i]) < 1e-4, `mean ${i}`);
  const offDiagonalError = (m: Float64Array) => {
    let e = 0;
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) if (i !== j) e = Math.max(e, Math.abs(m[i * c + j] - target.cov[i * c + j]));
    return e;
  };
  for (let k = 0; k < c * c; k++) assert.ok(Math.abs(got.cov[k] - target.cov[k]) < 1e-3 * (1 + Math.abs(target.cov[k])), `cov ${k}: ${got.cov[k]} vs ${target.cov[k]}`);
  // the synthetic defect the test must tell apart: AdaIN gets the variances right, not the correlations
  const ada = new Float32Array(f.data.length);
  adainInto(ada, f, channelStats(f), channelStats(s), 1);
  assert.ok(offDiagonalError(featureCovariance({ ...f, data: ada }).cov) > 100 * offDiagonalError(got.cov));
});

test('featureCovariance over several pixel blocks equals the direct sums', () => {
  const f = correlatedMap(9, 3, 70, 71); // 4970 pixels: two blocks
  const n = f.h * f.w, got = featureCovariance(f);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    let mi = 0, mj = 0, s = 0;
    for (let k = 0; k < n; k++) { mi += f.data[i * n + k]; mj += f.data[j * n + k]; }
    mi /= n; mj /= n;
    for (let k = 0; k < n; k++) s += (f.data[i * n + k] - mi) * (f.data[j * n + k] - mj);
    assert.ok(Math.abs(got.cov[i * 3 + j] - s / n) < 1e-9 * (1 + Math.abs(s / n)), `cov ${i},${j}`);
  }
});

test('symmetricPower: the square root squared is the matrix, the inverse root whitens it', () => {
  const c = 5, { cov } = featureCovariance(correlatedMap(5, c, 10, 10));
  const inv = symmetricPower(cov, c, -0.5, 0), root = symmetricPower(cov, c, 0.5, 0);
  for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) {
    // root * root = cov; inv * cov * inv = I
    let rr = 0, ici = 0;
    for (let k = 0; k < c; k++) rr += root[i * c + k] * root[k * c + j];
    for (let k = 0; k < c; k++) for (let l = 0; l < c; l++) ici += inv[i * c + k] * cov[k * c + l] * inv[l * c + j];
    assert.ok(Math.abs(rr - cov[i * c + j]) < 1e-9 * (1 + Math.abs(cov[i * c + j])), `root ${i},${j}`);
    assert.ok(Math.abs(ici - (i === j ? 1 : 0)) < 1e-6, `whiten ${i},${j}: ${ici}`);
  }
});

test('mixStats mixes the covariances only when every style has one', () => {
  const a = { ...channelStats(correlatedMap(6, 2, 4, 4)), cov: new Float64Array([1, 2, 2, 5]) };
  const b = { ...channelStats(correlatedMap(7, 2, 4, 4)), cov: new Float64Array([3, 0, 0, 1]) };
  assert.deepEqual([...mixStats([a, b], [0.25, 0.75]).cov!], [2.5, 0.5, 0.5, 2]);
  assert.equal(mixStats([a, channelStats(correlatedMap(8, 2, 4, 4))], [0.5, 0.5]).cov, undefined);
});

test('the onnxruntime runner gives wctInto\'s covariance and target', async () => {
  const runner = await WctRunner.create({ threads: 1 });
  try {
    const f = correlatedMap(10, 8, 40, 50, 1), s = correlatedMap(11, 8, 30, 30, 4);
    const ref = featureCovariance(f), got = await runner.covariance(f);
    for (let i = 0; i < ref.cov.length; i++) assert.ok(Math.abs(got.cov[i] - ref.cov[i]) < 1e-4 * (1 + Math.abs(ref.cov[i])), `cov ${i}`);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(got.mean[i] - ref.mean[i]) < 1e-5 * (1 + Math.abs(ref.mean[i])), `mean ${i}`);
    for (const alpha of [1, 0.7]) {
      const expected = new Float32Array(f.data.length);
      wctInto(expected, f, ref, featureCovariance(s), alpha);
      const out = await runner.transform(f, got, featureCovariance(s), alpha);
      let err = 0, scale = 0;
      for (let i = 0; i < expected.length; i++) { err = Math.max(err, Math.abs(out.data[i] - expected[i])); scale = Math.max(scale, Math.abs(expected[i])); }
      assert.ok(err < 1e-3 * scale, `alpha ${alpha}: max error ${err} of ${scale}`);
    }
  } finally {
    await runner.dispose();
  }
});

test('eval: --transform rows and typos', () => {
  assert.deepEqual(parseTransformList('adain, wct,wct'), ['adain', 'wct']);
  assert.throws(() => parseTransformList('wtc'), /--transform must be one of adain, wct/);
  assert.deepEqual(withTransforms([{ name: 'm', model: 'cd16x-r41' }], ['adain', 'wct']), [
    { name: 'm', model: 'cd16x-r41' }, { name: 'm+wct', model: 'cd16x-r41', transform: 'wct' },
  ]);
});

let model: StyleModel;
let content: RgbImage;
before(async () => {
  if (skip) return;
  model = await loadModel('cd16x-r41', { modelsDir: MODELS_DIR, threads: 2 });
  content = await readImage(EX('chelsea.jpg'));
});
after(async () => { await model?.dispose(); });

test('stylize with wct: the output takes more of the style than AdaIN; refusals name the fix', { skip }, async () => {
  const style = await model.readStyle(EX('scream.jpg'), { styleSize: 256 });
  const plain = await model.styleStats(style);
  const withCov = await model.styleStats(style, { transform: 'wct' });
  assert.equal(plain.cov, undefined);
  assert.equal(withCov.cov!.length, 128 * 128);
  const out = await model.stylizeToImage(content, [withCov], { transform: 'wct' });
  assert.deepEqual([out.width, out.height], [content.width, content.height]);
  assert.ok(out.data.every(Number.isFinite));
  // the output's features are closer to the style's covariance with wct than with AdaIN
  const covDistance = async (img: RgbImage) => {
    const f = await model.network.encodeStyle(img);
    const got = featureCovariance(f).cov;
    let d = 0;
    for (let i = 0; i < got.length; i++) d += (got[i] - withCov.cov![i]) ** 2;
    return d;
  };
  const ada = await model.stylizeToImage(content, [plain]);
  assert.ok(await covDistance(out) < 0.8 * await covDistance(ada));
  await assert.rejects(stylizeImage(model.network, content, [plain], { transform: 'wct' }), /needs the style's channel covariance/);
  await assert.rejects(model.stylizeToImage(content, [style, style], { transform: 'wct', mask: new Float32Array(content.width * content.height) }), /does not combine with --mask/);
});

test('cli: stylize --transform wct writes an image; a video content is refused with exit 2', { skip: cliSkip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'adain-wct-'));
  const out = path.join(dir, 'out.png');
  const ok = runAdain(['stylize', '--content', EX('chelsea.jpg'), '--style', EX('scream.jpg'), '--output', out, '--transform', 'wct', '-q'], dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(existsSync(out));
  const video = runAdain(['stylize', '--content', path.join(dir, 'clip.mp4'), '--style', EX('scream.jpg'), '--output', path.join(dir, 'o.mp4'), '--transform', 'wct', '-q'], dir);
  assert.equal(video.code, 2);
  assert.match(video.stderr, /--transform wct works on images, not videos .*clip\.mp4/);
  assert.ok(!existsSync(path.join(dir, 'o.mp4')));
  rmSync(dir, { recursive: true, force: true });
});
