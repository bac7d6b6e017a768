// Runs one tiny stylisation or training step on the CPU provider and on another one in this
// process and prints how far apart they are, as one JSON line. A child process of its own
// because the WebGPU provider reads VK_ICD_FILENAMES when it first loads, so the parent test
// sets it in this process's environment.
//   node --import tsx test/helpers/ep-compare.ts stylize|train <provider> <size>
import { loadModel } from '../../src/stylize/style-model.js';
import { decoderWeights, encoderWeights } from '../../src/models/canonical-weights.js';
import { findModel } from '../../src/models/registry.js';
import { resolveWeightFile } from '../../src/models/resolve.js';
import { StepRunner } from '../../src/train/step-runner.js';
import { readWeights } from '../../src/weights/index.js';
import { MODELS_DIR, ROOT } from './cli.js';
import path from 'node:path';

export interface EpComparison {
  provider: string;
  /** Per output (image, loss, each gradient): max |cpu - provider| and max |cpu|. */
  diffs: Record<string, { maxAbsDiff: number; maxAbs: number }>;
  cpuMs: number;
  providerMs: number;
}

function noise(length: number, seed: number): Float32Array {
  const d = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    d[i] = s / 2 ** 32;
  }
  return d;
}

function diff(a: Float32Array, b: Float32Array): { maxAbsDiff: number; maxAbs: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxAbsDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    // NaN must count as a difference, which Math.max alone would hide only on one side.
    const d = Math.abs(a[i] - b[i]);
    maxAbsDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsDiff, d);
    maxAbs = Math.max(maxAbs, Math.abs(a[i]));
  }
  return { maxAbsDiff, maxAbs };
}

/** A smooth image (blurred noise) so that the encoder sees structure, not only noise. */
function image(size: number, seed: number): { width: number; height: number; data: Float32Array } {
  const n = noise(3 * size * size, seed);
  const data = new Float32Array(n.length);
  for (let c = 0; c < 3; c++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const at = (yy: number, xx: number) => n[c * size * size + Math.min(size - 1, yy) * size + Math.min(size - 1, xx)];
    data[c * size * size + y * size + x] = (at(y, x) + at(y + 1, x) + at(y, x + 1) + at(y + 1, x + 1)) / 4;
  }
  return { width: size, height: size, data };
}

async function stylizeOn(provider: string, size: number): Promise<{ out: Map<string, Float32Array>; ms: number }> {
  const model = await loadModel('cd16x-r41', { modelsDir: MODELS_DIR, threads: 1, executionProvider: provider });
  const started = performance.now();
  const img = await model.stylizeToImage(image(size, 1), image(size, 2), { styleSize: size });
  const ms = performance.now() - started;
  await model.dispose();
  return { out: new Map([['image', img.data]]), ms };
}

async function trainStepOn(provider: string, crop: number): Promise<{ out: Map<string, Float32Array>; ms: number }> {
  const spec = findModel('cd16x-r41');
  const encFile = await resolveWeightFile(spec.encoder.weights, { modelsDir: MODELS_DIR });
  const decFile = path.join(ROOT, 'models', 'cd16x-r41.decoder.safetensors');
  const runner = await StepRunner.create({
    kind: 'cd16x', cut: 'relu4_1', styleLayers: ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1'],
    encoder: encoderWeights('cd16x', 'relu4_1', await readWeights(encFile), encFile),
    decoder: decoderWeights('relu4_1', await readWeights(decFile), decFile),
    mode: 'style', styleLoss: 'mse', contentWeight: 1, styleWeight: 10, tvWeight: 0,
    batch: 1, crop, threads: 1, executionProvider: provider,
  });
  const started = performance.now();
  const res = await runner.run({ index: 0, content: image(crop, 1).data, style: image(crop, 2).data, contentFiles: [], styleFiles: [] });
  const ms = performance.now() - started;
  const out = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries(res)) out.set(k, new Float32Array(v.data as Float32Array));
  await runner.dispose();
  return { out, ms };
}

const [what, provider, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const run = what === 'train' ? trainStepOn : stylizeOn;
const cpu = await run('cpu', size);
const other = await run(provider, size);
const diffs: EpComparison['diffs'] = {};
for (const [k, a] of cpu.out) {
  const b = other.out.get(k);
  if (!b) throw new Error(`${provider} gave no ${k}`);
  diffs[k] = diff(a, b);
}
const result: EpComparison = { provider, diffs, cpuMs: cpu.ms, providerMs: other.ms };
process.stdout.write(`${JSON.stringify(result)}\n`);
