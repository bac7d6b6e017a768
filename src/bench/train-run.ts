/**
 * `adain bench train`: images/s of one decoder training step per model, onnxruntime (the
 * trainer's own step, see train-step.ts) against the same step in PyTorch on the CPU with
 * the same threads, run by run in turn as the inference benchmark does. Then, with real
 * images, the same step fed by the trainer's prefetching loader (TrainingBatches), to show
 * how long the step waits on decoding, resizing and cropping.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { downsampleFactor } from '../models/architectures.js';
import { encoderWeights } from '../models/canonical-weights.js';
import { findModel, type ModelSpec } from '../models/registry.js';
import { modelStatus } from '../models/resolve.js';
import { listImages, PairSampler } from '../train/data.js';
import { TrainingBatches } from '../train/prefetch.js';
import { readWeights } from '../weights/index.js';
import { interleave, type Measure } from './interleave.js';
import { settled } from '../runtime/settle.js';
import { median, pseudoRandom, round, timeMs } from '../runtime/stats.js';
import { torchStatus, type TorchStatus } from './torch.js';
import { BENCH_CONTENT_WEIGHT, BENCH_LR, BENCH_STYLE_WEIGHT, TrainStep } from './train-step.js';
import { TORCH_TRAIN_SCRIPT, TorchTrainWorker } from './train-torch.js';

/** The layouts the issue asks for: the small cd16x encoder to relu4_1 and the normalised VGG-19 to relu3_1. */
export const TRAIN_BENCH_MODELS = ['cd16x-r41', 'vgg19-r31'] as const;
/** Default data folders, relative to the repository root (../shared/data/...). */
export const DEFAULT_DATA_CONTENT = fileURLToPath(new URL('../../../shared/data/content/train', import.meta.url));
export const DEFAULT_DATA_STYLE = fileURLToPath(new URL('../../../shared/data/style/train', import.meta.url));
/** The loader's prefetch depth (TrainingBatches' default, as the trainer uses it). */
export const DATA_PREFETCH_DEPTH = 2;

export interface TrainDataOptions {
  content: string;
  style: string;
  /** False for the default folders: when absent, the measurement is skipped with a note instead of failing. */
  explicit: boolean;
  /** Shorter side images are resized to before cropping (the trainer's --load-size). */
  loadSize: number;
  /** Steps measured after the first batch. */
  steps: number;
}

export interface TrainBenchOptions {
  modelsDir?: string;
  /** Registry names; TRAIN_BENCH_MODELS when empty. */
  models: string[];
  batch: number;
  crop: number;
  /** Timed steps after the warm-up ones. */
  runs: number;
  /** Untimed rounds first; default TRAIN_BENCH_WARMUP. */
  warmup?: number;
  threads: number;
  torch: boolean;
  /** The data-path measurement; null to skip it. */
  data: TrainDataOptions | null;
  onNote?: (line: string) => void;
}

/** One model. The JSON output is an array of these. */
export interface TrainBenchRow {
  model: string;
  batch: number;
  crop: number;
  /** batch * 1000 / step_ms. */
  images_per_s: number;
  /** The same for PyTorch; null without it. */
  torch_images_per_s: number | null;
  /** images_per_s / torch_images_per_s; null without PyTorch. */
  ratio: number | null;
  /** Median ms of one step (targets + forward/backward + Adam) on synthetic inputs. */
  step_ms: number;
  torch_step_ms: number | null;
  /** Steps run with real images after the first batch; null when the data path was not measured. */
  data_steps: number | null;
  /** Median ms of the step itself in that run (the loader working alongside). */
  data_step_ms: number | null;
  /** Total ms the step waited on the loader's queue over those steps (the first batch's wait left out). */
  data_wait_ms: number | null;
}

export interface DataPathDetail {
  model: string;
  steps: number;
  /** Sum of the step times of those steps. */
  totalStepMs: number;
  waitMs: number;
  maxWaitMs: number;
  /** How many of those steps found their batch not ready. */
  stalls: number;
  /** The pipeline filling up: the wait for the first batch. */
  firstWaitMs: number;
}

export type DataStatus =
  | { used: { content: string; style: string; contents: number; styles: number; loadSize: number; depth: number }; details: DataPathDetail[] }
  | { used: null; why: string };

export interface TrainBenchResult {
  rows: TrainBenchRow[];
  /**
   * Per model, the lowest and highest ratio of one round (PyTorch's ms over ours, measured one
   * after the other): how much the machine's noise moves the ratio.
   */
  roundRatios: { model: string; min: number; max: number }[];
  threads: number;
  runs: number;
  warmup: number;
  torch: TorchStatus;
  data: DataStatus;
}

/**
 * Both sides still speed up on their second step (onnxruntime's arena, PyTorch's caching
 * allocator): with one warm-up round the first timed cd16x step took 2.6-2.9 s against ~1.0 s
 * after, and that round's ratio read 0.94x.
 */
export const TRAIN_BENCH_WARMUP = 2;

interface Selected { spec: ModelSpec; encoderFile: string }

export async function runTrainBench(opts: TrainBenchOptions): Promise<TrainBenchResult> {
  const note = opts.onNote ?? (() => {});
  const warmup = opts.warmup ?? TRAIN_BENCH_WARMUP;
  const names = opts.models.length ? [...new Set(opts.models)] : [...TRAIN_BENCH_MODELS];
  const specs = names.map(findModel);
  for (const spec of specs) {
    const f = downsampleFactor(spec.encoder.cut);
    if (opts.crop % f !== 0 || opts.crop < 2 * f) {
      throw new UserError(`--crop ${opts.crop} must be a multiple of ${f} and at least ${2 * f} for ${spec.name} (${spec.encoder.cut})`);
    }
  }
  const selected: Selected[] = [];
  for (const spec of specs) {
    const enc = (await modelStatus(spec, { modelsDir: opts.modelsDir })).find((s) => s.role === 'encoder')!;
    if (!enc.localPath || enc.problem) note(`skipping ${spec.name}: ${enc.file} ${enc.problem ?? 'not present'}`);
    else selected.push({ spec, encoderFile: enc.localPath });
  }
  if (!selected.length) {
    throw new UserError('no model has its encoder file present; point --models-dir or $ADAIN_MODELS_DIR at the weights (see `adain models`)');
  }

  const data = await prepareData(opts, note);
  const torch = await torchStatus(opts.torch, note, TORCH_TRAIN_SCRIPT);
  const worker = torch.used ? TorchTrainWorker.start(torch.used, opts.threads) : null;
  const rows: TrainBenchRow[] = [];
  const roundRatios: TrainBenchResult['roundRatios'] = [];
  const details: DataPathDetail[] = [];
  try {
    for (const { spec, encoderFile } of selected) {
      const { kind, cut } = spec.encoder;
      const encoder = encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile);
      const step = await TrainStep.create({ kind, cut, encoder, batch: opts.batch, crop: opts.crop, threads: opts.threads });
      try {
        let torchOk = worker !== null;
        if (worker) {
          await worker.load({
            arch: step.architecture, batch: opts.batch, crop: opts.crop, lr: BENCH_LR,
            contentWeight: BENCH_CONTENT_WEIGHT, styleWeight: BENCH_STYLE_WEIGHT,
          }).catch((e: Error) => { torchOk = false; note(`PyTorch failed on ${spec.name}: ${e.message}`); });
        }
        note(`${spec.name}: training step, batch ${opts.batch}, ${opts.crop}x${opts.crop}...`);
        const n = opts.batch * 3 * opts.crop * opts.crop;
        const content = pseudoRandom(n, 1), style = pseudoRandom(n, 2);
        const ort: Measure = { run: () => timeMs(() => step.step(content, style)).then(settled) };
        const torchRun: Measure | null = torchOk && worker ? {
          run: () => worker.time(),
          onError: (e) => note(`PyTorch failed on ${spec.name}: ${e.message}`),
        } : null;
        const [ortMs, torchMs] = await interleave(opts.runs, [ort, torchRun], warmup);
        const row = makeRow(spec.name, opts.batch, opts.crop, ortMs, torchMs);
        if (torchMs && torchMs.length === ortMs.length) {
          const ratios = torchMs.map((t, i) => t / ortMs[i]);
          roundRatios.push({ model: spec.name, min: round(Math.min(...ratios), 2), max: round(Math.max(...ratios), 2) });
        }
        if (data.used && opts.data) {
          note(`${spec.name}: ${opts.data.steps + 1} steps on real images (load ${opts.data.loadSize}, crop ${opts.crop})...`);
          const d = await dataPath(step, data.files, opts, note);
          details.push({ model: spec.name, ...d.detail });
          row.data_steps = d.detail.steps;
          row.data_step_ms = round(median(d.stepMs), 1);
          row.data_wait_ms = round(d.detail.waitMs, 1);
        }
        rows.push(row);
      } finally {
        await step.dispose();
      }
    }
  } finally {
    await worker?.close();
  }
  const dataStatus: DataStatus = data.used
    ? { used: data.used, details }
    : { used: null, why: data.why };
  return { rows, roundRatios, threads: opts.threads, runs: opts.runs, warmup, torch, data: dataStatus };
}

type PreparedData =
  | { used: Extract<DataStatus, { used: object }>['used']; files: { contents: string[]; styles: string[] } }
  | { used: null; why: string };

async function prepareData(opts: TrainBenchOptions, note: (l: string) => void): Promise<PreparedData> {
  const d = opts.data;
  if (!d) return { used: null, why: 'skipped (--no-data)' };
  if (!d.explicit) {
    const missing = [d.content, d.style].filter((p) => !existsSync(p));
    if (missing.length) {
      const why = `skipped (${missing.join(', ')} not found; give --data-content and --data-style)`;
      note(`data path ${why}`);
      return { used: null, why };
    }
  }
  const contents = await listImages(d.content, { label: '--data-content' });
  const styles = await listImages(d.style, { label: '--data-style' });
  return {
    used: { content: d.content, style: d.style, contents: contents.length, styles: styles.length, loadSize: d.loadSize, depth: DATA_PREFETCH_DEPTH },
    files: { contents, styles },
  };
}

/**
 * steps + 1 batches from the trainer's loader through the step, with no pause in between (as
 * in training). The first batch's wait is the pipeline filling up and is left out.
 */
async function dataPath(
  step: TrainStep, files: { contents: string[]; styles: string[] }, opts: TrainBenchOptions, note: (l: string) => void,
): Promise<{ stepMs: number[]; detail: Omit<DataPathDetail, 'model'> }> {
  const d = opts.data!;
  const batches = new TrainingBatches(new PairSampler(files.contents, files.styles, { seed: 1 }), {
    batchSize: opts.batch, loadSize: d.loadSize, crop: opts.crop, seed: 1, depth: DATA_PREFETCH_DEPTH, warn: note,
  });
  const stepMs: number[] = [];
  const waits: number[] = [];
  let stalls = 0;
  try {
    for (let i = 0; i <= d.steps; i++) {
      const before = batches.stats();
      const b = await batches.next();
      const after = batches.stats();
      const ms = await timeMs(() => step.step(b.content, b.style));
      if (i === 0) continue;
      stepMs.push(ms);
      waits.push(after.waitMs - before.waitMs);
      stalls += after.stalls - before.stalls;
    }
    const s = batches.stats();
    return {
      stepMs,
      detail: {
        steps: d.steps,
        totalStepMs: stepMs.reduce((a, b) => a + b, 0),
        waitMs: s.waitMs - s.firstWaitMs,
        maxWaitMs: Math.max(0, ...waits),
        stalls,
        firstWaitMs: s.firstWaitMs,
      },
    };
  } finally {
    await batches.close();
  }
}

function makeRow(model: string, batch: number, crop: number, ortMs: number[], torchMs: number[] | null): TrainBenchRow {
  const ms = median(ortMs);
  const tMs = torchMs ? median(torchMs) : null;
  return {
    model, batch, crop,
    images_per_s: round((batch * 1000) / ms, 2),
    torch_images_per_s: tMs === null ? null : round((batch * 1000) / tMs, 2),
    ratio: tMs === null ? null : round(tMs / ms, 2),
    step_ms: round(ms, 1),
    torch_step_ms: tMs === null ? null : round(tMs, 1),
    data_steps: null,
    data_step_ms: null,
    data_wait_ms: null,
  };
}
