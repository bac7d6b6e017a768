// The real pretrained weights from ../shared/models on real photos.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readImage, resizeImage, type RgbImage } from '../src/image/io.js';
import { loadModel } from '../src/stylize/style-model.js';
import { clampImage, Judge, statsOf, styleDistance, type StyleTarget } from '../src/eval/judge.js';

export const MODELS_DIR = path.resolve(import.meta.dirname, '../../shared/models');
const SHARED = existsSync(MODELS_DIR);
const skip = SHARED ? false : `../shared/models not found at ${MODELS_DIR}`;
const PHOTO = path.resolve(import.meta.dirname, '../examples/chelsea.jpg');

function psnr(a: RgbImage, b: RgbImage): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.min(1, Math.max(0, a.data[i])) - b.data[i];
    se += d * d;
  }
  return 10 * Math.log10(1 / (se / a.data.length));
}

async function photo256(): Promise<RgbImage> {
  return resizeImage(await readImage(PHOTO), 256, 256);
}

test('normalised VGG-19: relu3_1 mean activation of a photo is about 1', { skip }, async () => {
  const model = await loadModel('vgg19-r31-recon', { modelsDir: MODELS_DIR, threads: 2 });
  const f = await model.network.encode(await photo256());
  const mean = f.data.reduce((a, b) => a + b, 0) / f.data.length;
  assert.ok(mean > 0.5 && mean < 2, `relu3_1 mean ${mean}`);
  await model.dispose();
});

for (const name of ['vgg19-r31-recon', 'cd16x-r41-recon']) {
  test(`${name}: encode then decode with the reconstruction decoder gives PSNR > 20 dB`, { skip }, async () => {
    const model = await loadModel(name, { modelsDir: MODELS_DIR, threads: 2 });
    const img = await photo256();
    const rec = await model.network.decode(await model.network.encode(img));
    const p = psnr(rec, img);
    assert.ok(p > 20, `${name} PSNR ${p.toFixed(2)} dB`);
    await model.dispose();
  });
}

test('cd16x-r41-recon: alpha 0 reconstructs the content, alpha 1 moves away from it', { skip }, async () => {
  const model = await loadModel('cd16x-r41-recon', { modelsDir: MODELS_DIR, threads: 2 });
  const content = await photo256();
  const style = path.resolve(import.meta.dirname, '../examples/scream.jpg');
  const a0 = await model.stylizeToImage(content, style, { alpha: 0, styleSize: 256 });
  const a1 = await model.stylizeToImage(content, style, { alpha: 1, styleSize: 256 });
  const p0 = psnr(a0, content), p1 = psnr(a1, content);
  assert.ok(p0 > 20, `alpha 0 PSNR ${p0}`);
  assert.ok(p1 < p0 - 3, `alpha 1 PSNR ${p1} should be well below alpha 0's ${p0}`);
  await model.dispose();
});

// The style distance of `adain eval` (the normalised VGG-19 judge, relu1_1..relu3_1) on the
// bundled photo and painting: the trained decoders must stylise, and more than the
// reconstruction decoders they started from. This pair is a hard case (the photo is already
// close to the painting: distance ~2.5, a quarter of the evaluation's average), hence the
// modest margins; `adain eval` has the 400-pair numbers (trained 1.3-3.0 vs 9.9 unchanged).
// On this pair (session 9): unchanged 2.48, reconstruction decoders 2.61 (vgg19-r31-recon),
// vgg19-r31's session-9 decoder 2.23 (its session-3 one 2.08, though it is 7.5% behind on the
// 400 pairs); a decoder that does not stylise (a reconstruction decoder, random weights) fails.
for (const name of ['cd16x-r41', 'cd16x-r31', 'vgg19-r31']) {
  test(`${name} (the project's trained decoder) moves the output's statistics to the style's, further than the reconstruction decoder`, { skip }, async () => {
    const content = await photo256();
    const judge = await Judge.load({ modelsDir: MODELS_DIR, threads: 2 });
    const distances: number[] = [];
    try {
      let target: StyleTarget | null = null;
      for (const which of [name, `${name}-recon`]) {
        const model = await loadModel(which, { modelsDir: MODELS_DIR, threads: 2 });
        const style = await model.readStyle(path.resolve(import.meta.dirname, '../examples/scream.jpg'), { styleSize: 256 });
        if (!target) {
          target = await judge.styleTarget(style);
          distances.push(styleDistance(statsOf(await judge.features(content)), target));
        }
        distances.push(styleDistance(statsOf(await judge.features(clampImage(await model.stylizeToImage(content, style)))), target));
        await model.dispose();
      }
    } finally {
      await judge.dispose();
    }
    const [unchanged, trained, recon] = distances;
    assert.ok(trained < 0.95 * unchanged, `style distance: content ${unchanged}, trained ${trained}`);
    assert.ok(trained < 0.9 * recon, `style distance: trained ${trained} vs reconstruction decoder ${recon}`);
  });
}
