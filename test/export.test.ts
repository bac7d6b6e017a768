// `adain export`: static ONNX graphs for edge runtimes, their pixel formats, float16 and validation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { UserError } from '../src/errors.js';
import { exportCommand } from '../src/cli/export-command.js';
import { buildExportBytes, exportStylizer, loadExportModel, readStyleStatsFile, stylizerSpec, type LoadedExportModel } from '../src/export/export.js';
import { expectedOutput, identityConv, PIXEL_FORMATS, quantize8, toInputData, fromOutputData } from '../src/export/formats.js';
import { floatToHalf, halfToFloat, toFloat16Model } from '../src/export/fp16.js';
import { runOnnxChecker } from '../src/export/onnx-checker.js';
import { ALLOWED_OPS, checkExportModel, graphOf } from '../src/export/ops.js';
import { buildStylizer, type StylizerNetwork } from '../src/export/stylizer.js';
import { ExportedSession, maxAbsDiff } from '../src/export/validate.js';
import { readImage, resizeImage, type RgbImage } from '../src/image/io.js';
import { Graph } from '../src/onnx/graph.js';
import { adain, ADAIN_EPS, type ChannelStats } from '../src/stylize/features.js';

const { onnx } = onnxProto;
const ROOT = path.resolve(import.meta.dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '../shared/models');
const skip = existsSync(MODELS_DIR) ? false : `../shared/models not found at ${MODELS_DIR}`;
const EX = (f: string) => path.join(ROOT, 'examples', f);
const hasPythonOnnx = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'adain-export-'));
const threads = 1;

/** A pseudo-random image with values a little outside [0,1], to exercise the clipping. */
function testImage(w: number, h: number, seed = 1): RgbImage {
  const data = new Float32Array(3 * w * h);
  let s = seed;
  for (let i = 0; i < data.length; i++) { s = (s * 1103515245 + 12345) % 2 ** 31; data[i] = (s / 2 ** 31) * 1.4 - 0.2; }
  return { width: w, height: h, data };
}

/** A network of one identity 1x1 conv each side: AdaIN with 3 channels between. */
const tiny: StylizerNetwork = {
  encoderLayers: [{ kind: 'conv', name: 'conv0', k: 1, relu: false }],
  encoder: new Map([['conv0', identityConv()]]),
  decoderLayers: [{ kind: 'conv', name: 'dec', k: 1, relu: false }],
  decoder: new Map([['dec', identityConv()]]),
};

test('every input/output format pair converts exactly, in every opset', async () => {
  const img = testImage(8, 6);
  for (const opset of [11, 13, 17]) {
    for (const input of PIXEL_FORMATS) {
      for (const output of PIXEL_FORMATS) {
        // alpha 0: the network is the identity, so the model is just the two conversions
        const bytes = buildStylizer(tiny, { width: 8, height: 6, opset, alpha: 0, input, output, style: { kind: 'stats' }, eps: ADAIN_EPS });
        checkExportModel(bytes);
        const s = await ExportedSession.create(bytes, { input, output, style: 'stats' }, { threads });
        const raw = await s.runRaw({ content: img, stats: { mean: new Float32Array(3), std: new Float32Array(3) } });
        await s.dispose();
        // what the network sees: the float image, or the camera's 8-bit BGR read back as RGB
        const seen = input === 'rgb-float' ? img : fromOutputData(toInputData(img, input), 'bgr-u8-planar', 8, 6);
        const want = expectedOutput(seen, output);
        assert.equal(raw.constructor, want.constructor, `${input} -> ${output}: output type`);
        assert.ok(maxAbsDiff(raw, want) <= (output === 'rgb-float' ? 1e-6 : 0), `${input} -> ${output} (opset ${opset}): max diff ${maxAbsDiff(raw, want)}`);
      }
    }
  }
  // the uint8 layouts themselves: BGR planes, levels rounded half up, clipped
  const px: RgbImage = { width: 2, height: 1, data: Float32Array.from([0.2, 1.2, 0.33, -1, 0.91, 0.999]) };
  assert.deepEqual([...expectedOutput(px, 'bgr-u8-planar')], [232, 255, 84, 0, 51, 255]);
  assert.deepEqual([...toInputData(px, 'bgr-u8-planar')], [232, 255, 84, 0, 51, 255]);
});

test('in-graph AdaIN (plain ops) matches the host AdaIN, baked and as inputs, with alpha', async () => {
  const img = testImage(16, 12, 7);
  const style: ChannelStats = { mean: Float32Array.from([0.2, 0.5, 0.7]), std: Float32Array.from([0.05, 0.2, 0.1]) };
  for (const alpha of [1, 0.6]) {
    const host = adain({ c: 3, h: 12, w: 16, data: img.data }, style, 1);
    const want = expectedOutput({ width: 16, height: 12, data: host.data.map((v, i) => alpha * v + (1 - alpha) * img.data[i]) }, 'rgb-float');
    for (const kind of ['baked', 'stats'] as const) {
      const bytes = buildStylizer(tiny, {
        width: 16, height: 12, opset: 11, alpha, input: 'rgb-float', output: 'rgb-float',
        style: kind === 'baked' ? { kind, stats: style } : { kind }, eps: ADAIN_EPS,
      });
      const s = await ExportedSession.create(bytes, { input: 'rgb-float', output: 'rgb-float', style: kind }, { threads });
      const got = await s.runRaw({ content: img, stats: style });
      await s.dispose();
      assert.ok(maxAbsDiff(got, want) < 2e-5, `${kind}, alpha ${alpha}: ${maxAbsDiff(got, want)}`);
    }
  }
});

test('the op allow-list rejects InstanceNormalization, constant padding and symbolic shapes', () => {
  const g = new Graph('bad');
  const x = g.input('x', [1, 3, 8, 8]);
  const y = g.op('InstanceNormalization', [x, g.float([1, 1, 1]), g.float([0, 0, 0])]);
  g.output(g.op('Relu', [y], {}, 'out'), 'out', [1, 3, 8, 8]);
  assert.throws(() => checkExportModel(g.toModel(11)), (e: Error) => e instanceof UserError && /op InstanceNormalization .*not in the allowed set/.test(e.message));

  const p = new Graph('pad');
  const px = p.input('x', [1, 3, 8, 8]);
  p.output(p.op('Pad', [px, p.int64([0, 0, 1, 1, 0, 0, 1, 1])], { mode: { s: 'constant' } }, 'out'), 'out', [1, 3, 10, 10]);
  assert.throws(() => checkExportModel(p.toModel(11)), /only reflect padding/);

  const d = new Graph('dyn');
  const dx = d.input('x', [1, 3, 'H', 'W']);
  d.output(d.op('Relu', [dx], {}, 'out'), 'out', [1, 3, 'H', 'W']);
  assert.throws(() => checkExportModel(d.toModel(11)), /symbolic dimension H/);
  assert.ok(!ALLOWED_OPS.includes('InstanceNormalization') && !ALLOWED_OPS.includes('MeanVarianceNormalization'));
});

test('float16 conversion rounds to nearest even, with subnormals and overflow', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2), 0xc000);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(70000), 0x7c00);
  assert.equal(floatToHalf(2 ** -24), 0x0001);
  assert.equal(floatToHalf(2 ** -14), 0x0400);
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
  for (const v of [0.1, 3.14159, 1e-5, 255.5, -1234.5]) assert.ok(Math.abs(halfToFloat(floatToHalf(v)) - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v}`);
});

let loaded: LoadedExportModel;
let content: RgbImage;
let stats: ChannelStats;
before(async () => {
  if (skip) return;
  loaded = await loadExportModel({ model: 'cd16x-r41', modelsDir: MODELS_DIR, threads });
  content = quantize8(await resizeImage(await readImage(EX('chelsea.jpg')), 64, 64));
  stats = await loaded.reference.styleStats(EX('scream.jpg'), { styleSize: 128 });
});
after(async () => { await loaded?.reference.dispose(); });

test('cd16x-r41 at 64x64 with a baked style: validated end to end', { skip }, async () => {
  const r = await exportStylizer({ model: 'cd16x-r41', modelsDir: MODELS_DIR, width: 64, height: 64, style: EX('scream.jpg'), styleSize: 128, threads });
  assert.equal(r.images.length, 2);
  for (const c of r.images) assert.ok(c.maxAbsDiff <= 2e-3 && c.psnr > 60, `${c.name}: ${c.maxAbsDiff}, ${c.psnr} dB`);
  assert.deepEqual(r.summary.inputs, [{ name: 'content', dims: [1, 3, 64, 64], type: 'float' }]);
  assert.deepEqual(r.summary.outputs, [{ name: 'stylized', dims: [1, 3, 64, 64], type: 'float' }]);
  assert.equal(r.summary.opset, 11);
  for (const op of r.summary.ops.keys()) assert.ok(ALLOWED_OPS.includes(op), op);
  assert.ok(!r.summary.ops.has('Cast'), 'a float32 rgb-float model needs no Cast');
  if (hasPythonOnnx) assert.equal(r.checker.status, 'passed', JSON.stringify(r.checker));
  else assert.equal(r.checker.status, 'skipped');
});

test('opsets 11 and 17, both pixel formats: the ONNX checker and strict shape inference pass', { skip: skip || (!hasPythonOnnx && '/usr/bin/python3 has no onnx') }, async () => {
  for (const opset of [11, 17]) {
    const spec = stylizerSpec(loaded, { width: 64, height: 48, opset, inputFormat: 'bgr-u8-planar', outputFormat: 'bgr-u8-planar', fp16: opset === 17, style: 's' }, stats);
    const r = await runOnnxChecker(buildExportBytes(loaded, spec, opset === 17));
    assert.equal(r.status, 'passed', JSON.stringify(r));
  }
});

test('float16 export: float16 weights, PSNR > 30 dB against the float32 export', { skip }, async () => {
  const r = await exportStylizer({ model: 'cd16x-r41', modelsDir: MODELS_DIR, width: 64, height: 64, style: EX('scream.jpg'), styleSize: 128, fp16: true, threads, checker: false });
  for (const c of r.images) {
    assert.ok(c.psnrVsFp32! > 30 && c.psnrEmulatedVsFp32! > 30 && c.psnr > 30, JSON.stringify(c));
  }
  const g = graphOf(onnx.ModelProto.decode(r.bytes));
  const types = new Set(g.initializer.filter((t) => t.dims.length === 4).map((t) => t.dataType));
  assert.deepEqual([...types], [10], 'conv weights are float16');
  assert.equal(g.input[0].type?.tensorType?.elemType, 1, 'the interface stays float32');
  assert.equal(r.summary.ops.get('Cast'), 2);
});

test('a style-statistics model fed the same statistics equals the baked one', { skip }, async () => {
  const base = { width: 64, height: 64, inputFormat: 'bgr-u8-planar', outputFormat: 'rgb-float', alpha: 0.75 } as const;
  const baked = buildExportBytes(loaded, stylizerSpec(loaded, { ...base, style: 's' }, stats), false);
  const byStats = buildExportBytes(loaded, stylizerSpec(loaded, { ...base, styleMode: 'stats' }), false);
  const a = await ExportedSession.create(baked, { input: base.inputFormat, output: base.outputFormat, style: 'baked' }, { threads });
  const b = await ExportedSession.create(byStats, { input: base.inputFormat, output: base.outputFormat, style: 'stats' }, { threads });
  const x = await a.runRaw({ content });
  const y = await b.runRaw({ content, stats });
  await Promise.all([a.dispose(), b.dispose()]);
  assert.ok(maxAbsDiff(x, y) < 1e-5, `max diff ${maxAbsDiff(x, y)}`);
  // and the float16 conversion leaves the statistics inputs float32
  const half = graphOf(onnx.ModelProto.decode(toFloat16Model(byStats)));
  assert.deepEqual(half.input.map((i) => i.type?.tensorType?.elemType), [2, 1, 1]);
});

test('a two-input model (content, style image of its own size) matches the in-process model', { skip }, async () => {
  const r = await exportStylizer({
    model: 'cd16x-r41', modelsDir: MODELS_DIR, width: 64, height: 64, styleMode: 'image', styleWidth: 96, styleHeight: 64,
    validationImages: [EX('chelsea.jpg')], threads, checker: false,
  });
  assert.deepEqual(r.summary.inputs.map((i) => `${i.name}[${i.dims}]`), ['content[1,3,64,64]', 'style[1,3,64,96]']);
  assert.ok(r.images[0].maxAbsDiff <= 2e-3, String(r.images[0].maxAbsDiff));
  assert.equal(r.styleStats, undefined);
});

test('adain export CLI: a style-statistics model and its statistics file, written atomically', { skip }, async () => {
  const out = path.join(tmp, 'stats.onnx');
  const stderr: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => { stderr.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    await exportCommand().exitOverride().parseAsync([
      '--models-dir', MODELS_DIR, '--style', EX('scream.jpg'), '--style-size', '128', '--style-stats', '--size', '64x32',
      '--output-format', 'bgr-u8-planar', '-o', out, '-t', '1', '--validate-with', EX('astronaut.jpg'),
    ], { from: 'user' });
  } finally {
    process.stderr.write = write;
  }
  const text = stderr.join('');
  assert.match(text, /Wrote .*stats\.onnx/);
  assert.match(text, /style_mean float\[1,128,1,1\]/);
  const file = readStyleStatsFile(path.join(tmp, 'stats.style.json'));
  const st = await file;
  assert.equal(st.mean.length, 128);
  assert.equal(st.layer, 'relu4_1');
  const summary = checkExportModel(readFileSync(out));
  assert.deepEqual(summary.outputs[0], { name: 'stylized', dims: [1, 3, 32, 64], type: 'uint8' });
  await assert.rejects(
    exportCommand().exitOverride().parseAsync(['--models-dir', MODELS_DIR, '--size', '60x64', '--style', EX('scream.jpg'), '-o', path.join(tmp, 'bad.onnx')], { from: 'user' }),
    /multiple of 8/,
  );
  assert.ok(!existsSync(path.join(tmp, 'bad.onnx')));
});
