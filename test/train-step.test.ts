// The training-step graph (losses and every decoder gradient) against PyTorch autograd
// (scripts/fixtures/train_step.py, float64 reference on float32 inputs).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as ort from 'onnxruntime-node';
import { UserError } from '../src/errors.js';
import { encoderLayers, type CutLayer } from '../src/models/architectures.js';
import { encoderModel } from '../src/models/graphs.js';
import { decoderWeights, encoderWeights } from '../src/models/canonical-weights.js';
import { createSession, floatTensor } from '../src/runtime/session.js';
import { TargetEncoder } from '../src/train/features.js';
import { trainStepModel, type TrainStepSpec } from '../src/train/step-graph.js';
import { readWeights } from '../src/weights/index.js';
import { featureCovariance, wctInto } from '../src/stylize/wct.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('./fixtures/train/', import.meta.url));

interface Entry { file: string; shape: number[] }
interface Case {
  cut: CutLayer; mode: 'style' | 'reconstruct'; styleLoss: 'mse' | 'rms'; styleLayers: CutLayer[];
  contentWeight: number; styleWeight: number; batch: number; height: number; width: number; decoder: string;
  loss: number; content_loss: number; style_loss: number; pixel_loss?: number;
  inputs: Record<string, Entry>; outputs: Record<string, Entry>;
}
const manifest = JSON.parse(readFileSync(join(ROOT, 'manifest.json'), 'utf8')) as {
  encoder: string; images: { content: Entry; style: Entry }; cases: Record<string, Case>;
};

function load(e: Entry): { data: Float32Array; dims: number[] } {
  const bytes = readFileSync(join(ROOT, e.file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
  assert.equal(data.length, e.shape.reduce((a, b) => a * b, 1), `${e.file}: size`);
  return { data, dims: e.shape };
}

async function setup(c: Case): Promise<{ spec: TrainStepSpec; params: Record<string, ort.Tensor> }> {
  const encFile = join(ROOT, manifest.encoder);
  const encoder = encoderWeights('cd16x', 'relu4_1', await readWeights(encFile), encFile);
  const decFile = join(ROOT, c.decoder);
  const decoder = decoderWeights(c.cut, await readWeights(decFile), decFile);
  const params: Record<string, ort.Tensor> = {};
  for (const [name, p] of decoder) {
    params[`${name}.weight`] = floatTensor(p.weight.data, p.weight.shape);
    params[`${name}.bias`] = floatTensor(p.bias.data, p.bias.shape);
  }
  const spec: TrainStepSpec = {
    kind: 'cd16x', cut: c.cut, styleLayers: c.styleLayers, encoder,
    decoderShapes: new Map([...decoder].map(([n, p]) => [n, { weight: p.weight.shape, bias: p.bias.shape }])),
    batch: c.batch, height: c.height, width: c.width, mode: c.mode, styleLoss: c.styleLoss,
    contentWeight: c.contentWeight, styleWeight: c.styleWeight,
  };
  return { spec, params };
}

for (const [name, c] of Object.entries(manifest.cases)) {
  test(`${name}: losses, decoded image and every decoder gradient match PyTorch autograd`, async () => {
    const { spec, params } = await setup(c);
    const session = await createSession(trainStepModel(spec), { threads: 1 });
    const feeds = { ...params };
    for (const [k, e] of Object.entries(c.inputs)) { const t = load(e); feeds[k] = floatTensor(t.data, t.dims); }
    const out = await session.run(feeds);

    const scalars: [string, number][] = [['loss', c.loss], ['content_loss', c.content_loss], ['style_loss', c.style_loss]];
    if (c.pixel_loss !== undefined) scalars.push(['pixel_loss', c.pixel_loss]);
    for (const [k, expected] of scalars) {
      const actual = (out[k].data as Float32Array)[0];
      assert.ok(Math.abs(actual - expected) <= 1e-5 * Math.max(Math.abs(expected), 1), `${k}: ${actual} vs PyTorch ${expected}`);
    }
    const grads = Object.keys(out).filter((k) => k.startsWith('grad:')).sort();
    assert.deepEqual(grads, Object.keys(params).map((p) => `grad:${p}`).sort(), 'one gradient per decoder parameter');
    for (const [k, e] of Object.entries(c.outputs)) {
      const expected = load(e);
      assert.deepEqual([...out[k].dims], expected.dims, `${k}: shape`);
      const actual = out[k].data as Float32Array;
      const err = maxAbsDiff(actual, expected.data), scale = maxAbs(expected.data);
      assert.ok(scale > 0 && err <= 1e-4 * scale, `${k}: max abs error ${err} > 1e-4 x ${scale}`);
    }
  });
}

test('the training graph rejects sizes the decoder cannot invert and mismatched decoder shapes', async () => {
  const { spec } = await setup(manifest.cases.r41_style_mse);
  assert.throws(() => trainStepModel({ ...spec, height: 36 }), (e: unknown) => e instanceof UserError && /multiple of 8/.test(e.message));
  assert.throws(() => trainStepModel({ ...spec, width: 8 }), (e: unknown) => e instanceof UserError && /at least 16/.test(e.message));
  const shapes = new Map(spec.decoderShapes);
  shapes.set('dec3_4', { weight: [32, 31, 3, 3], bias: [32] });
  assert.throws(() => trainStepModel({ ...spec, decoderShapes: shapes }), (e: unknown) => e instanceof UserError && /dec3_4/.test(e.message));
  shapes.delete('dec3_4');
  assert.throws(() => trainStepModel({ ...spec, decoderShapes: shapes }), (e: unknown) => e instanceof UserError && /no shape for decoder layer 'dec3_4'/.test(e.message));
});

// The step's constant inputs (AdaIN target at the cut, style statistics per layer) as the
// trainer computes them from image batches, against the same quantities from PyTorch.
for (const name of ['r31_style_mse', 'r41_style_mse', 'r31_reconstruct']) {
  test(`${name}: the target encoder's AdaIN target and style statistics match PyTorch`, async () => {
    const c = manifest.cases[name];
    const encFile = join(ROOT, manifest.encoder);
    const encoder = encoderWeights('cd16x', c.cut, await readWeights(encFile), encFile);
    const targets = await TargetEncoder.create('cd16x', c.cut, c.mode === 'style' ? c.styleLayers : [], encoder, { threads: 1 });
    try {
      const content = load(manifest.images.content), style = load(manifest.images.style);
      const got = await targets.targets(content.data, c.mode === 'style' ? style.data : undefined, content.dims);
      const expected: [string, Float32Array][] = [['target', got.target]];
      for (const l of c.mode === 'style' ? c.styleLayers : []) {
        expected.push([`style_mean_${l}`, got.styleMean.get(l)!], [`style_std_${l}`, got.styleStd.get(l)!]);
      }
      for (const [key, actual] of expected) {
        const ref = load(c.inputs[key]).data;
        assert.equal(actual.length, ref.length, `${key}: size`);
        assert.ok(maxAbsDiff(actual, ref) <= 1e-4 * Math.max(maxAbs(ref), 1e-6), `${key}: max |diff| ${maxAbsDiff(actual, ref)} vs max ${maxAbs(ref)}`);
      }
    } finally {
      await targets.dispose();
    }
  });
}

// --transform wct: the target is the whitening and colouring transform of each sample's encoder
// features (stylize/wct.ts, itself tested against AdaIN and the style covariance in wct.test.ts),
// the style statistics stay those PyTorch gives.
test('with --transform wct the target encoder gives each sample the wct of its features', async () => {
  const c = manifest.cases.r31_style_mse;
  const encFile = join(ROOT, manifest.encoder);
  const encoder = encoderWeights('cd16x', c.cut, await readWeights(encFile), encFile);
  const targets = await TargetEncoder.create('cd16x', c.cut, c.styleLayers, encoder, { threads: 1 }, undefined, false, 'wct');
  const plain = await createSession(encoderModel(encoderLayers(c.cut, true), encoder, [c.cut]), { threads: 1 });
  try {
    const content = load(manifest.images.content), style = load(manifest.images.style);
    const got = await targets.targets(content.data, style.data, content.dims);
    const fc = (await plain.run({ image: floatTensor(content.data, content.dims) }))[c.cut];
    const fs = (await plain.run({ image: floatTensor(style.data, style.dims) }))[c.cut];
    const [B, C, h, w] = fc.dims, n = C * h * w;
    const expected = new Float32Array(B * n);
    for (let b = 0; b < B; b++) {
      const f = { c: C, h, w, data: (fc.data as Float32Array).subarray(b * n, (b + 1) * n) };
      const st = { c: C, h: fs.dims[2], w: fs.dims[3], data: (fs.data as Float32Array).subarray(b * n, (b + 1) * n) };
      wctInto(expected.subarray(b * n, (b + 1) * n), f, featureCovariance(f), featureCovariance(st), 1);
    }
    assert.ok(maxAbsDiff(got.target, expected) <= 1e-3 * maxAbs(expected), `target: max |diff| ${maxAbsDiff(got.target, expected)}`);
    const adainTarget = load(c.inputs.target).data;
    assert.ok(maxAbsDiff(got.target, adainTarget) > 0.05 * maxAbs(adainTarget), 'the wct target is not the AdaIN one');
    for (const l of c.styleLayers) {
      const ref = load(c.inputs[`style_std_${l}`]).data;
      assert.ok(maxAbsDiff(got.styleStd.get(l)!, ref) <= 1e-4 * maxAbs(ref), `style_std_${l}`);
    }
  } finally {
    await targets.dispose();
    await plain.release();
  }
});

// --loss-network: a second network measuring the decoded image's style. Given the encoder's own
// weights for relu1_1..relu3_1, the step must be exactly the encoder-only step: the same loss
// and gradients as PyTorch's, through the separately emitted network and its own feeds.
test('a loss network with the encoder\'s weights gives the PyTorch step of the encoder alone', async () => {
  const c = manifest.cases.r41_style_mse;
  const { spec, params } = await setup(c);
  const lossLayers: CutLayer[] = ['relu1_1', 'relu2_1', 'relu3_1'];
  const encFile = join(ROOT, manifest.encoder);
  const lossNetwork = { kind: 'cd16x' as const, weights: encoderWeights('cd16x', 'relu3_1', await readWeights(encFile), encFile), styleLayers: lossLayers };
  const own = c.styleLayers.filter((l) => !lossLayers.includes(l));
  assert.deepEqual(own, ['relu4_1']);
  const session = await createSession(trainStepModel({ ...spec, styleLayers: own, lossNetwork }), { threads: 1 });
  const feeds = { ...params };
  for (const [k, e] of Object.entries(c.inputs)) {
    const t = load(e);
    const layer = /^style_(?:mean|std)_(relu\d_1)$/.exec(k)?.[1] as CutLayer | undefined;
    feeds[layer && lossLayers.includes(layer) ? `loss_${k}` : k] = floatTensor(t.data, t.dims);
  }
  const out = await session.run(feeds);
  for (const [k, expected] of [['loss', c.loss], ['style_loss', c.style_loss], ['content_loss', c.content_loss]] as const) {
    const actual = (out[k].data as Float32Array)[0];
    assert.ok(Math.abs(actual - expected) <= 1e-5 * Math.max(Math.abs(expected), 1), `${k}: ${actual} vs PyTorch ${expected}`);
  }
  for (const [k, e] of Object.entries(c.outputs).filter(([k]) => k.startsWith('grad:'))) {
    const expected = load(e).data, actual = out[k].data as Float32Array;
    assert.ok(maxAbsDiff(actual, expected) <= 1e-4 * maxAbs(expected), `${k}: max abs error ${maxAbsDiff(actual, expected)}`);
  }

  // and the target encoder hands the loss network's statistics of the style images to those feeds
  const encoder = encoderWeights('cd16x', c.cut, await readWeights(encFile), encFile);
  const targets = await TargetEncoder.create('cd16x', c.cut, own, encoder, { threads: 1 }, lossNetwork);
  try {
    const content = load(manifest.images.content), style = load(manifest.images.style);
    const got = await targets.targets(content.data, style.data, content.dims);
    assert.deepEqual([...got.styleMean.keys()], own);
    for (const l of lossLayers) {
      for (const [key, actual] of [[`style_mean_${l}`, got.lossMean.get(l)!], [`style_std_${l}`, got.lossStd.get(l)!]] as const) {
        const ref = load(c.inputs[key]).data;
        assert.ok(maxAbsDiff(actual, ref) <= 1e-4 * Math.max(maxAbs(ref), 1e-6), `loss network ${key}: max |diff| ${maxAbsDiff(actual, ref)}`);
      }
    }
  } finally {
    await targets.dispose();
  }
});

// --photo-content-weight: the loss network's features of the decoded image against those of the
// content image. Its value against an independent run of that network, its gradient against
// central finite differences of the step's own loss (the other terms weighted 0).
test('the photo content loss is the MSE of the loss network\'s features of the decoded and the content image, and its gradient matches finite differences', async () => {
  const c = manifest.cases.r41_style_mse;
  const { spec, params } = await setup(c);
  const lossLayers: CutLayer[] = ['relu1_1', 'relu2_1', 'relu3_1'];
  const encFile = join(ROOT, manifest.encoder);
  const lossWeights = encoderWeights('cd16x', 'relu3_1', await readWeights(encFile), encFile);
  const lossNetwork = { kind: 'cd16x' as const, weights: lossWeights, styleLayers: lossLayers };
  const own: CutLayer[] = ['relu4_1'];
  const content = load(manifest.images.content), style = load(manifest.images.style);
  const targets = await TargetEncoder.create('cd16x', c.cut, own, spec.encoder, { threads: 1 }, lossNetwork, true);
  const features = await createSession(encoderModel(encoderLayers('relu3_1', true), lossWeights, ['relu3_1']), { threads: 1 });
  const relu31 = async (images: Float32Array) => (await features.run({ image: floatTensor(images, content.dims) })).relu3_1.data as Float32Array;
  try {
    const got = await targets.targets(content.data, style.data, content.dims);
    const photo = await relu31(content.data);
    assert.ok(got.lossContent && maxAbsDiff(got.lossContent, photo) <= 1e-5 * maxAbs(photo), 'the target encoder gives the loss network\'s features of the content images');

    const session = await createSession(trainStepModel({ ...spec, styleLayers: own, lossNetwork, contentWeight: 0, styleWeight: 0, photoContentWeight: 1 }), { threads: 1 });
    const feeds: Record<string, ort.Tensor> = { ...params, target: floatTensor(got.target, load(c.inputs.target).dims) };
    for (const l of own) {
      feeds[`style_mean_${l}`] = floatTensor(got.styleMean.get(l)!, [c.batch, got.styleMean.get(l)!.length / c.batch]);
      feeds[`style_std_${l}`] = floatTensor(got.styleStd.get(l)!, [c.batch, got.styleStd.get(l)!.length / c.batch]);
    }
    for (const l of lossLayers) {
      feeds[`loss_style_mean_${l}`] = floatTensor(got.lossMean.get(l)!, [c.batch, got.lossMean.get(l)!.length / c.batch]);
      feeds[`loss_style_std_${l}`] = floatTensor(got.lossStd.get(l)!, [c.batch, got.lossStd.get(l)!.length / c.batch]);
    }
    feeds.loss_content_relu3_1 = floatTensor(photo, [c.batch, photo.length / (c.batch * (c.height / 4) * (c.width / 4)), c.height / 4, c.width / 4]);
    const run = async () => session.run(feeds);
    const out = await run();
    const loss = (out.loss.data as Float32Array)[0], term = (out.photo_content_loss.data as Float32Array)[0];
    assert.equal(loss, term, 'with the other weights 0 the loss is the photo term');
    const decoded = await relu31(out.decoded.data as Float32Array);
    const mse = decoded.reduce((s, v, i) => s + (v - photo[i]) ** 2, 0) / decoded.length;
    assert.ok(Math.abs(term - mse) <= 1e-4 * mse, `photo content loss ${term} vs the features' MSE ${mse}`);

    // biases and weights at both ends of the decoder, each at its largest gradient (float32 losses: the best signal to noise)
    for (const param of ['dec1_1.bias', 'dec1_1.weight', 'dec2_1.bias', 'dec4_1.weight']) {
      const grad = out[`grad:${param}`].data as Float32Array;
      const index = grad.reduce((best, g, i) => (Math.abs(g) > Math.abs(grad[best]) ? i : best), 0);
      const h = 1e-3;
      const data = feeds[param].data as Float32Array;
      const v = data[index];
      data[index] = v + h;
      const up = ((await run()).loss.data as Float32Array)[0];
      data[index] = v - h;
      const down = ((await run()).loss.data as Float32Array)[0];
      data[index] = v;
      const numeric = (up - down) / (2 * h), analytic = grad[index];
      assert.ok(Math.abs(numeric - analytic) <= 0.02 * Math.max(Math.abs(numeric), 1e-3 * term), `${param}[${index}]: gradient ${analytic} vs finite difference ${numeric}`);
    }
    await session.release();
  } finally {
    await targets.dispose();
    await features.release();
  }
});

test('the photo content loss needs a loss network', async () => {
  const { spec } = await setup(manifest.cases.r41_style_mse);
  assert.throws(() => trainStepModel({ ...spec, photoContentWeight: 1 }), (e: unknown) => e instanceof UserError && /loss network/.test(e.message));
});
