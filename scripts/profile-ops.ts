// Where a stylisation's time goes: onnxruntime's own per-node kernel times for the fp32 and the
// int8 encoder and decoder of a model at one size, summed by operator type, with the slowest
// nodes (--nodes N). The int8 graphs need the model's calibration (adain calibrate).
// Usage:
//   node --import tsx scripts/profile-ops.ts [--model cd16x-r41] [--size 512] [--threads 1] [--runs 10] [--nodes 8]
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { decoderLayers, downsampleFactor, encoderLayers } from '../src/models/architectures.js';
import { decoderWeights, encoderWeights } from '../src/models/canonical-weights.js';
import { decoderModel, encoderModel } from '../src/models/graphs.js';
import { findModel } from '../src/models/registry.js';
import { resolveWeightFile } from '../src/models/resolve.js';
import { findCalibration, selectedRanges } from '../src/quant/calibrate.js';
import { qdqDecoderModel, qdqEncoderModel } from '../src/quant/qdq.js';
import { createSession } from '../src/runtime/session.js';
import { pseudoRandom } from '../src/runtime/stats.js';
import { readWeights } from '../src/weights/index.js';

const o = new Command('profile-ops')
  .option('--model <name>', 'registered model', 'cd16x-r41')
  .option('--size <n>', 'square input side in pixels', Number, 512)
  .option('--threads <n>', 'onnxruntime intra-op threads', Number, 1)
  .option('--runs <n>', 'profiled runs per graph (after one warm-up)', Number, 10)
  .option('--nodes <n>', 'also list the n slowest nodes of each graph', Number, 0)
  .parse()
  .opts<{ model: string; size: number; threads: number; runs: number; nodes: number }>();

const ROOT = path.resolve(import.meta.dirname, '..');
const modelsDir = process.env.ADAIN_MODELS_DIR ?? path.resolve(ROOT, '../shared/models');
const spec = findModel(o.model);
const { kind, cut } = spec.encoder;
// the registry looks in the bundled models/ first, then here
const weightFile = (w: Parameters<typeof resolveWeightFile>[0]) => resolveWeightFile(w, { modelsDir, download: false });
const encFile = await weightFile(spec.encoder.weights), decFile = await weightFile(spec.decoder.weights);
const enc = encoderWeights(kind, cut, await readWeights(encFile), encFile);
const dec = decoderWeights(cut, await readWeights(decFile), decFile);
const found = await findCalibration(encFile, decFile);
if (!found.found) {
  console.error(`${decFile}: no int8 calibration for it; run adain calibrate --model ${o.model}`);
  process.exit(2);
}
const q = selectedRanges(found.calibration);
const eL = encoderLayers(cut, kind !== 'vgg19bn'), dL = decoderLayers(cut);
const featC = [...enc.values()].at(-1)!.weight.shape[0];
const f = o.size / downsampleFactor(cut);

const graphs: [string, Uint8Array, string, number[]][] = [
  ['encoder fp32', encoderModel(eL, enc, [cut]), 'image', [1, 3, o.size, o.size]],
  ['encoder int8', qdqEncoderModel(eL, enc, [cut], q.encoder), 'image', [1, 3, o.size, o.size]],
  ['decoder fp32', decoderModel(dL, dec), 'features', [1, featC, f, f]],
  ['decoder int8', qdqDecoderModel(dL, dec, q.decoder), 'features', [1, featC, f, f]],
];
const dir = mkdtempSync(path.join(tmpdir(), 'adain-profile-'));
try {
  console.log(`${o.model} at ${o.size}x${o.size}, ${o.threads} thread(s), ${o.runs} runs: kernel ms per run`);
  for (const [label, model, input, dims] of graphs) {
    const prefix = path.join(dir, label.replace(' ', '-'));
    // features in the range AdaIN gives (roughly the style's mean +- a few std), images in [0, 1)
    const n = dims.reduce((a, b) => a * b, 1);
    const x = new ort.Tensor('float32', pseudoRandom(n, 1).map((v) => (input === 'features' ? 2 * v : v)), dims);
    // the project's own session settings (runtime/session.ts), so the profile is of what adain runs
    const profiled = await createSession(model, { threads: o.threads, executionProvider: 'cpu', profileFilePrefix: prefix });
    await profiled.run({ [input]: x }); // warm-up, counted out below
    for (let i = 0; i < o.runs; i++) await profiled.run({ [input]: x });
    profiled.endProfiling();
    await profiled.release();
    const file = readdirSync(dir).find((e) => e.startsWith(path.basename(prefix)))!;
    type Event = { cat: string; name: string; dur: number; args?: { op_name?: string } };
    const nodes = (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Event[]).filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    // each run logs every node once: drop the warm-up run's share (the first node events)
    const perRun = nodes.length / (o.runs + 1);
    const timed = nodes.slice(perRun);
    const byOp = new Map<string, number>(), byNode = new Map<string, number>();
    for (const e of timed) {
      const op = e.args?.op_name ?? '?', ms = e.dur / o.runs / 1000;
      byOp.set(op, (byOp.get(op) ?? 0) + ms);
      const key = `${op} ${e.name.replace(/_kernel_time$/, '')}`;
      byNode.set(key, (byNode.get(key) ?? 0) + ms);
    }
    const total = [...byOp.values()].reduce((a, b) => a + b, 0);
    console.log(`${label.padEnd(13)} ${total.toFixed(1).padStart(7)}  ${[...byOp].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    for (const [k, v] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, o.nodes)) console.log(`${' '.repeat(14)}${v.toFixed(2).padStart(7)}  ${k}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
