// int8 inference: onnxruntime fuses every conv of the QDQ graphs (no silent float fallback), the
// quality of int8 against fp32 on held-out pairs, the calibration file and the errors around it.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { benchCommand } from '../src/cli/bench-command.js';
import { UserError } from '../src/errors.js';
import { Judge } from '../src/eval/judge.js';
import { readImage, resizeImage, type RgbImage } from '../src/image/io.js';
import { decoderLayers, encoderLayers } from '../src/models/architectures.js';
import { decoderWeights, encoderWeights, type ConvWeights } from '../src/models/canonical-weights.js';
import { findModel } from '../src/models/registry.js';
import { resolveWeightFile } from '../src/models/resolve.js';
import { calibrate, calibrationPathFor, defaultFloatLayers, readCalibration, selectedRanges, type Calibration } from '../src/quant/calibrate.js';
import { decoderModel, encoderModel } from '../src/models/graphs.js';
import { qdqDecoderModel, qdqEncoderModel } from '../src/quant/qdq.js';
import { stylizeImage } from '../src/stylize/model.js';
import { Network } from '../src/stylize/network.js';
import { loadModel } from '../src/stylize/style-model.js';
import { readWeights, writeSafetensors } from '../src/weights/index.js';

const SHARED = path.resolve(import.meta.dirname, '../../shared');
const MODELS_DIR = path.join(SHARED, 'models');
const BUNDLED_DECODER = path.resolve(import.meta.dirname, '../models/cd16x-r41.decoder.safetensors');
const BUNDLED_CALIBRATION = path.resolve(import.meta.dirname, '../models/cd16x-r41.calibration.json');
const CONTENT_TEST = path.join(SHARED, 'data/content/test');
const STYLE_TEST = path.join(SHARED, 'data/style/test');
const JUDGE_FILE = path.join(MODELS_DIR, 'vgg19-normalised/vgg_normalised_conv3_1.pth');
const skip = existsSync(path.join(MODELS_DIR, findModel('cd16x-r41').encoder.weights.file)) && existsSync(BUNDLED_CALIBRATION)
  ? false : `the cd16x encoder in ${MODELS_DIR} or ${BUNDLED_CALIBRATION} not found`;
const noData = skip || (existsSync(CONTENT_TEST) && existsSync(STYLE_TEST) && existsSync(JUDGE_FILE) ? false : 'test data or judge weights not found');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-int8-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let encoderFile: string;
let enc: ConvWeights, dec: ConvWeights;
let calibration: Calibration;
before(async () => {
  if (skip) return;
  encoderFile = await resolveWeightFile(findModel('cd16x-r41').encoder.weights, { modelsDir: MODELS_DIR, download: false });
  enc = encoderWeights('cd16x', 'relu4_1', await readWeights(encoderFile), encoderFile);
  dec = decoderWeights('relu4_1', await readWeights(BUNDLED_DECODER), BUNDLED_DECODER);
  calibration = await readCalibration(BUNDLED_CALIBRATION);
});

/** Node types of the graph onnxruntime actually runs, from the optimised model it saves. */
async function optimisedOpCounts(model: Uint8Array, name: string): Promise<Map<string, number>> {
  const file = path.join(tmp, `${name}.optimised.onnx`);
  const s = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3,
  });
  await s.release();
  const counts = new Map<string, number>();
  for (const n of onnxProto.onnx.ModelProto.decode(readFileSync(file)).graph!.node!) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
}

/** The convs the shipped calibration keeps in float on purpose (quant/calibrate.ts defaultFloatLayers says why). */
const INTENDED_FLOAT = { encoder: ['conv1_1', 'conv4_1'], decoder: ['dec4_1', 'dec1_2', 'dec1_1'] };

test('onnxruntime fuses every int8 conv of the encoder and decoder; the only float convs are the intended exceptions', { skip }, async () => {
  assert.deepEqual(calibration.float, INTENDED_FLOAT);
  const q = selectedRanges(calibration);
  const encLayers = encoderLayers('relu4_1', true), decLayers = decoderLayers('relu4_1');
  const convs = (ls: typeof encLayers) => ls.filter((l) => l.kind === 'conv').length;
  const e = await optimisedOpCounts(qdqEncoderModel(encLayers, enc, ['relu4_1'], q.encoder), 'encoder');
  const d = await optimisedOpCounts(qdqDecoderModel(decLayers, dec, q.decoder), 'decoder');
  // Q after a float conv whose successor is int8; DQ before a float conv that follows an int8 one
  // (encoder: conv1_1 -> Q, then int8 to conv3_4 -> DQ -> conv4_1 -> the channel scales undone; decoder: dec4_1 -> Q ... dec2_1 -> DQ ->
  // the last upsample in float -> dec1_2 -> dec1_1)
  for (const [name, counts, floats, dq, qs] of [['encoder', e, INTENDED_FLOAT.encoder, 1, 1], ['decoder', d, INTENDED_FLOAT.decoder, 1, 1]] as const) {
    const ops = JSON.stringify(Object.fromEntries(counts));
    // float convs after optimisation: Conv (any domain, the NCHWc one included) and FusedConv
    assert.equal((counts.get('Conv') ?? 0) + (counts.get('FusedConv') ?? 0), floats.length, `${name}: float convs other than ${floats.join(', ')}: ${ops}`);
    assert.equal(counts.get('DequantizeLinear') ?? 0, dq, `${name}: ${ops}`);
    assert.equal(counts.get('QuantizeLinear') ?? 0, qs, `${name}: ${ops}`);
  }
  // the encoder's conv1_1 has conv0 folded in
  assert.equal(e.get('QLinearConv'), convs(encLayers) - 1 - INTENDED_FLOAT.encoder.length, JSON.stringify(Object.fromEntries(e)));
  assert.equal(e.get('ConvInteger') ?? 0, 0);
  assert.equal(d.get('QLinearConv'), convs(decLayers) - INTENDED_FLOAT.decoder.length, JSON.stringify(Object.fromEntries(d)));
});

test('the default float convs: the first and last encoder convs, the first and last decoder convs, and narrow decoder convs at full resolution', { skip }, () => {
  const r41 = defaultFloatLayers(encoderLayers('relu4_1', true), decoderLayers('relu4_1'), dec);
  assert.deepEqual(r41, INTENDED_FLOAT);
  // without weights, or with a decoder whose full-resolution convs are wide (VGG-19's 64 channels), only the roles count
  assert.deepEqual(defaultFloatLayers(encoderLayers('relu4_1', true), decoderLayers('relu4_1')).decoder, ['dec4_1', 'dec1_1']);
  const wide: ConvWeights = new Map([...dec].map(([k, p]) => [k, k === 'dec1_2' ? { weight: { shape: [64, 64, 3, 3], data: new Float32Array(0) }, bias: p.bias } : p]));
  assert.deepEqual(defaultFloatLayers(encoderLayers('relu4_1', true), decoderLayers('relu4_1'), wide).decoder, ['dec4_1', 'dec1_1']);
});

test('the fused last encoder conv gives the features of the exact ConvInteger one (older calibrations) to within its u8 steps', { skip }, async () => {
  const selected = selectedRanges(calibration);
  const encLayers = encoderLayers('relu4_1', true);
  const last = encLayers.filter((l) => l.kind === 'conv').at(-1)!.name;
  assert.ok(selected.encoder.scales[last], `the shipped calibration equalises ${last}`);
  // the last conv in int8 (the default keeps it float now)
  const q = { encoder: { ...selected.encoder, float: selected.encoder.float?.filter((n) => n !== last) } };
  const { [last]: _, ...olderScales } = q.encoder.scales;
  const older = { ...q.encoder, scales: olderScales };
  assert.equal((await optimisedOpCounts(qdqEncoderModel(encLayers, enc, ['relu4_1'], older), 'encoder-older')).get('ConvInteger'), 1);
  const img = await resizeImage(await readImage(path.join(CONTENT_TEST, readdirSync(CONTENT_TEST).sort()[0])), 128, 128);
  const run = async (model: Uint8Array) => {
    const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      return (await s.run({ image: new ort.Tensor('float32', img.data, [1, 3, 128, 128]) })).relu4_1.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const fused = await run(qdqEncoderModel(encLayers, enc, ['relu4_1'], q.encoder));
  const exact = await run(qdqEncoderModel(encLayers, enc, ['relu4_1'], older));
  // per channel: the error stays below one u8 step of that channel (its scale x the tensor's step)
  // plus what the equalised earlier layers change, far below the channel's own size
  const C = q.encoder.scales[last].length, plane = fused.length / C;
  let worst = 0;
  for (let c = 0; c < C; c++) {
    let err = 0, ref = 0;
    for (let i = c * plane; i < (c + 1) * plane; i++) { err += (fused[i] - exact[i]) ** 2; ref += exact[i] ** 2; }
    if (ref > 0) worst = Math.max(worst, Math.sqrt(err / ref));
  }
  assert.ok(worst < 0.03, `worst channel's relative RMS error ${worst.toFixed(4)}`);
  let err = 0, ref = 0;
  for (let i = 0; i < fused.length; i++) { err += (fused[i] - exact[i]) ** 2; ref += exact[i] ** 2; }
  assert.ok(Math.sqrt(err / ref) < 0.01, `relative RMS error ${Math.sqrt(err / ref).toFixed(4)}`);
});

/** Runs a one-input model on the CPU and returns its only output. */
async function runOnce(model: Uint8Array, input: string, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await s.run({ [input]: new ort.Tensor('float32', data, dims) });
    return Object.values(out)[0].data as Float32Array;
  } finally {
    await s.release();
  }
}

test('the decoder\'s float tail (one edge pad before the last upsample instead of two reflect pads after it) equals the float decoder except on the outermost pixel ring', { skip }, async () => {
  const decLayers = decoderLayers('relu4_1');
  // every conv in float: the graph differs from the fp32 one only by the tail's padding
  const allFloat = { ranges: {}, scales: {}, float: decLayers.flatMap((l) => (l.kind === 'conv' ? [l.name] : [])) };
  const h = 8, w = 10, H = 8 * h, W = 8 * w;
  const features = Float32Array.from({ length: 128 * h * w }, (_, i) => Math.max(0, Math.sin(i * 0.37) * 3 + Math.cos(i * 0.011)));
  const tail = await runOnce(qdqDecoderModel(decLayers, dec, allFloat), 'features', features, [1, 128, h, w]);
  const ref = await runOnce(decoderModel(decLayers, dec), 'features', features, [1, 128, h, w]);
  let inside = 0, ring = 0, scale = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = (c * H + y) * W + x, d = Math.abs(tail[i] - ref[i]);
        scale = Math.max(scale, Math.abs(ref[i]));
        if (y === 0 || x === 0 || y === H - 1 || x === W - 1) ring = Math.max(ring, d);
        else inside = Math.max(inside, d);
      }
    }
  }
  assert.ok(inside < 1e-4 * scale, `inside the ring: max |difference| ${inside} (output up to ${scale})`);
  // the ring does differ (the tail is in use), and only by a fraction of the output's range
  assert.ok(ring > 0 && ring < 0.25 * scale, `ring: max |difference| ${ring} (output up to ${scale})`);
});

test('an int8 encoder whose last conv runs in float gives the fp32 features to within int8 noise, not divided by that conv\'s equalisation scales', { skip }, async () => {
  const q = selectedRanges(calibration);
  const encLayers = encoderLayers('relu4_1', true);
  const last = encLayers.filter((l) => l.kind === 'conv').at(-1)!.name;
  assert.ok(q.encoder.scales[last], `the shipped calibration equalises ${last}`);
  const img = await resizeImage(await readImage(path.join(CONTENT_TEST, readdirSync(CONTENT_TEST).sort()[0])), 128, 128);
  const ref = await runOnce(encoderModel(encLayers, enc, ['relu4_1']), 'image', img.data, [1, 3, 128, 128]);
  const relRms = (a: Float32Array) => {
    let err = 0, sq = 0;
    for (let i = 0; i < a.length; i++) { err += (a[i] - ref[i]) ** 2; sq += ref[i] ** 2; }
    return Math.sqrt(err / sq);
  };
  for (const float of [[], [last]]) {
    const features = await runOnce(qdqEncoderModel(encLayers, enc, ['relu4_1'], { ...q.encoder, float: ['conv1_1', ...float] }), 'image', img.data, [1, 3, 128, 128]);
    // int8 noise: ~2% here; features left divided by the scales were 14% off
    assert.ok(relRms(features) < 0.05, `float [conv1_1, ${float.join(', ')}]: relative RMS error vs fp32 ${relRms(features).toFixed(4)}`);
  }
});

/** `n` pairs spread evenly over the sorted test folders, at 256x256. */
async function testPairs(n: number): Promise<{ name: string; content: RgbImage; style: RgbImage }[]> {
  const cs = readdirSync(CONTENT_TEST).sort(), ss = readdirSync(STYLE_TEST).sort();
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = cs[Math.floor((i * cs.length) / n)], s = ss[Math.floor((i * ss.length) / n)];
    out.push({
      name: `${c} x ${s}`,
      content: await resizeImage(await readImage(path.join(CONTENT_TEST, c)), 256, 256),
      style: await resizeImage(await readImage(path.join(STYLE_TEST, s)), 256, 256),
    });
  }
  return out;
}

function psnr(a: RgbImage, b: RgbImage): number {
  let s = 0;
  const clamp = (v: number) => (v > 0 ? (v < 1 ? v : 1) : 0);
  for (let i = 0; i < a.data.length; i++) s += (clamp(a.data[i]) - clamp(b.data[i])) ** 2;
  return 10 * Math.log10(a.data.length / s);
}

interface PairQuality { name: string; psnr: number; style: [number, number]; content: [number, number] }
let quality: PairQuality[] | undefined;

/** int8 vs fp32 on 16 held-out pairs (16 contents, 16 styles): PSNR and the judge's distances of both (computed once). */
async function measureQuality(): Promise<PairQuality[]> {
  if (quality) return quality;
  const fp32 = await Network.fromWeights('cd16x', 'relu4_1', enc, dec, { threads: 2 });
  const int8 = await Network.fromWeights('cd16x', 'relu4_1', enc, dec, { threads: 2, int8: selectedRanges(calibration) });
  const judge = await Judge.load({ file: JUDGE_FILE, threads: 2 });
  try {
    const rows: PairQuality[] = [];
    for (const p of await testPairs(16)) {
      const a = await stylizeImage(fp32, p.content, [p.style]);
      const b = await stylizeImage(int8, p.content, [p.style]);
      const ct = await judge.contentTarget(p.content), st = await judge.styleTarget(p.style);
      const ma = await judge.measure(a, ct, st), mb = await judge.measure(b, ct, st);
      rows.push({ name: p.name, psnr: psnr(a, b), style: [ma.style, mb.style], content: [ma.content, mb.content] });
    }
    for (const r of rows) {
      const pct = ([x, y]: [number, number]) => `${(100 * (y / x - 1)).toFixed(1)}%`;
      console.log(`int8 vs fp32, ${r.name}: PSNR ${r.psnr.toFixed(2)} dB, style ${r.style[0].toFixed(4)} -> ${pct(r.style)}, content ${r.content[0].toFixed(4)} -> ${pct(r.content)}`);
    }
    return (quality = rows);
  } finally {
    await Promise.all([fp32.dispose(), int8.dispose(), judge.dispose()]);
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

const meanPsnr = (q: PairQuality[]) => sum(q.map((r) => r.psnr)) / q.length;
const distanceRatio = (q: PairQuality[], k: 'style' | 'content') => sum(q.map((r) => r[k][1])) / sum(q.map((r) => r[k][0]));

// What int8 now reaches on these 16 pairs (styles through the float encoder, Network.encodeStyle;
// conv1_1, conv4_1, dec4_1, dec1_2, dec1_1 float, the decoder's float tail padded at the low
// resolution), with the session-12 decoder: min 26.1 dB (the caterpillar under van Gogh's houses, a
// low-contrast photo whose error sits in flat areas), mean 36.7 dB, distances within 0.7%; 2/16
// under 32 dB (session 11's decoder: 26.3 / 36.8 / 1.2%; session 10's: 26.4 / 36.6 / 2.0%).
// With the last encoder conv fused into int8 (its channels equalised) and session 9's decoder: min 25.6, mean 36.0, 3/16 under 32 (25.7 with
// session 8's decoder, 27.2 with session 3's). Earlier states: the exact, 2x slower ConvInteger last conv of
// session 6 gave mean 36.3; styles through the int8 encoder mean 34.2, and the first all-int8
// graph with percentile ranges everywhere mean 32.3: the mean bound is the one that catches
// such regressions, the per-pair floor a broken pair.
test('int8 quality guard: every pair >= 25 dB and mean >= 35.5 dB vs fp32, judge distances (summed over pairs) within 3%', { skip: noData }, async () => {
  const q = await measureQuality();
  for (const r of q) assert.ok(r.psnr >= 25, `${r.name}: PSNR ${r.psnr.toFixed(2)} dB`);
  assert.ok(meanPsnr(q) >= 35.5, `mean PSNR ${meanPsnr(q).toFixed(2)} dB`);
  for (const k of ['style', 'content'] as const) assert.ok(Math.abs(distanceRatio(q, k) - 1) <= 0.03, `${k} distance int8/fp32 = ${distanceRatio(q, k).toFixed(4)}`);
});

// The gate, not met yet: with the style statistics in float, the two pairs left are
// low-contrast photos under high-contrast styles (tar36 x the wave 28.3, the caterpillar x van
// Gogh's houses 26.1; session-12 decoder), where AdaIN amplifies the content encoder's error and the
// decoder's. It is not the calibration (session 11, session-10 decoder, float decoder): the int8
// encoder alone gives 31.3 and 27.7 dB there, and with ranges measured on those very photos 30.6 and
// 29.3; the encoder's s8 weights alone (activations float) already cost 35.7 dB on the caterpillar
// pair. Nor is it the encoder alone: with every encoder conv in float and only the decoder int8
// (session 12, `--float encoder`) the caterpillar pair is still 26.4 dB, and the 512 frame only
// 1.33x faster than fp32. What these two pairs share is a float model that is itself chaotic there
// (session 13, `--noise-floor`): half an 8-bit level of noise on the content moves the fp32 output to
// 32.8 dB (tar36) and 41.1 dB (caterpillar) against 50-67 dB on 13 of the other 14 pairs; int8 sits
// 8-26 dB under that floor on the other pairs, 4.5 and 15 dB under it on these two. Their error is
// fine texture, not a shift (on the caterpillar the per-channel mean is 0.1% of the squared error, a
// 16-px low-pass 2.8%; 22% on tar36), so bias correction has little to take; with conv1_2..conv2_2
// and dec3_4 in float as well they reach only 30.6 / 28.6 dB and the 512 frame gains 1.47x instead
// of 1.96x (one thread, same run). Kept visible here until it passes.
test('int8 quality gate of the issue: every pair >= 32 dB vs fp32, judge distances (summed over pairs) within 3%', { skip: noData, todo: '2 of these 16 pairs are under 32 dB (scripts/int8-quality.ts --diagonal 16)' }, async () => {
  const q = await measureQuality();
  for (const r of q) assert.ok(r.psnr >= 32, `${r.name}: PSNR ${r.psnr.toFixed(2)} dB`);
  for (const k of ['style', 'content'] as const) assert.ok(Math.abs(distanceRatio(q, k) - 1) <= 0.03, `${k} distance int8/fp32 = ${distanceRatio(q, k).toFixed(4)}`);
});

test('calibration file: written beside the decoder, read back equal, used by --precision int8; a decoder without one is refused naming the fix', { skip: noData }, async () => {
  const dir = path.join(tmp, 'mine');
  const cacheDir = path.join(tmp, 'cache');
  const decoder = path.join(tmp, 'decoder.safetensors');
  copyFileSync(BUNDLED_DECODER, decoder);
  const opts = { modelsDir: MODELS_DIR, decoder, cacheDir, download: false, threads: 2 } as const;

  // no calibration yet: int8 is refused with the command that makes one; auto falls back to fp32
  await assert.rejects(loadModel('cd16x-r41', { ...opts, precision: 'int8' }), (err: Error) => {
    assert.ok(err instanceof UserError, String(err));
    assert.match(err.message, /no int8 calibration/);
    assert.ok(err.message.includes(`adain calibrate --model cd16x-r41 --decoder ${decoder}`), err.message);
    assert.match(err.message, /--precision fp32/);
    return true;
  });
  const auto = await loadModel('cd16x-r41', { ...opts, precision: 'auto' });
  assert.equal(auto.network.precision, 'fp32');
  await auto.dispose();

  const { file, calibration: written } = await calibrate({
    model: 'cd16x-r41', kind: 'cd16x', cut: 'relu4_1', encoderFile, decoderFile: decoder, enc, dec, threads: 2, cacheDir,
    contentDir: path.join(SHARED, 'data/content/train'), styleDir: path.join(SHARED, 'data/style/train'), contents: 2, styles: 3, size: 64,
  });
  assert.equal(file, calibrationPathFor(decoder));
  assert.equal(file, path.join(tmp, 'decoder.calibration.json'));
  assert.deepEqual(await readCalibration(file), JSON.parse(JSON.stringify(written)));
  assert.equal(written.pairs, 3);
  assert.ok(written.ranges.percentile.decoder.input.max <= written.ranges.minmax.decoder.input.max);

  const m = await loadModel('cd16x-r41', { ...opts, precision: 'int8' });
  assert.equal(m.network.precision, 'int8');
  const out = await m.stylizeToImage({ width: 64, height: 48, data: new Float32Array(3 * 64 * 48).fill(0.5) }, [{ width: 64, height: 64, data: new Float32Array(3 * 64 * 64).fill(0.3) }], { styleSize: 64 });
  assert.deepEqual([out.width, out.height], [64, 48]);
  assert.ok(out.data.every(Number.isFinite));
  await m.dispose();

  // a calibration of other weights is stale: refused, and said so
  const other = path.join(dir, 'decoder.safetensors');
  mkdirSync(dir, { recursive: true });
  const w = await readWeights(BUNDLED_DECODER);
  const first = [...w.keys()][0];
  w.get(first)!.data[0] += 1e-3;
  await writeSafetensors(other, w);
  copyFileSync(file, calibrationPathFor(other));
  await assert.rejects(loadModel('cd16x-r41', { ...opts, decoder: other, precision: 'int8' }), /made for other weights/);

  // a damaged file names itself and the fix
  const broken = path.join(tmp, 'broken.calibration.json');
  writeFileSync(broken, '{"format":"adain-calibration","version":1}');
  await assert.rejects(readCalibration(broken), (err: Error) => err instanceof UserError && err.message.includes(broken) && /adain calibrate/.test(err.message));
});

test('adain bench --precision fp32,int8 gives an int8 row beside each fp32 one, and names the CPU', { skip }, async () => {
  const out: string[] = [], err: string[] = [];
  const cmd = benchCommand({ stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  await cmd.parseAsync(['--json', '--runs', '1', '--sizes', '64', '--no-torch', '--threads', '2', '--precision', 'fp32,int8',
    '--model', 'cd16x-r41', '--models-dir', MODELS_DIR], { from: 'user' });
  const rows = JSON.parse(out.join('')) as { model: string; precision: string; ms: number }[];
  assert.deepEqual(rows.map((r) => [r.model, r.precision]), [['cd16x-r41', 'fp32'], ['cd16x-r41', 'int8']]);
  assert.ok(rows.every((r) => r.ms > 0));
  assert.match(err.join(''), /cpu: .*avx512_vnni: (yes|no|unknown), avx_vnni: (yes|no|unknown)/);
});
