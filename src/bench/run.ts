/**
 * The benchmark loop. For every model and size, onnxruntime, PyTorch and the reference
 * conv take turns run by run, so that a noisy neighbour slows all three alike instead of
 * whichever happened to be running.
 */
import { roundUp } from '../image/pad.js';
import type { RgbImage } from '../image/io.js';
import { styleStats, stylizeImage } from '../stylize/model.js';
import { stylisationFlops } from './flops.js';
import { loadBenchNetwork, selectModels } from './load.js';
import { REFERENCE_FLOPS, REFERENCE_NAME, ReferenceConv } from './reference-conv.js';
import { interleave, type Measure } from './interleave.js';
import { median, pseudoRandom, round, timeMs } from '../runtime/stats.js';
import { settled } from '../runtime/settle.js';
import { torchStatus, TorchWorker, type TorchStatus } from './torch.js';
import { UserError } from '../errors.js';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { findCalibration, selectedRanges } from '../quant/calibrate.js';
import { Network, type Precision } from '../stylize/network.js';
import { readWeights } from '../weights/index.js';
import { cpuInfo, type CpuInfo } from './cpu.js';

export interface BenchOptions {
  modelsDir?: string;
  /** Registry names; all models when empty. */
  models: string[];
  sizes: number[];
  /** Timed runs after one warm-up. */
  runs: number;
  threads: number;
  /** Compare with PyTorch when it is installed. */
  torch: boolean;
  /** fp32 always runs; int8 rows for models with a calibration (`adain calibrate`). Default fp32 only. */
  precisions?: Precision[];
  /** Skipped models, PyTorch problems and progress, one line each (the CLI sends them to stderr). */
  onNote?: (line: string) => void;
}

/** One model at one size. The JSON output is an array of these. */
export interface BenchRow {
  model: string;
  /** fp32, or int8 (the QDQ graphs, quant/qdq.ts); PyTorch is always float32. */
  precision: Precision;
  /** Side of the square content and style images. */
  size: number;
  /** Median ms of one stylisation: encode content + encode style + AdaIN + decode. */
  ms: number;
  /** Median ms of one frame of a stream, the style's statistics computed beforehand: encode content + AdaIN + decode. */
  frame_ms: number;
  /** Conv GFLOP/s achieved at that median. */
  gflops: number;
  /** Median ms of the same architecture in PyTorch, same threads; null without PyTorch. */
  torch_ms: number | null;
  /** torch_ms / ms: the speed-up over PyTorch; null without PyTorch. */
  ratio: number | null;
  /** PyTorch's frame_ms; null without PyTorch. */
  torch_frame_ms: number | null;
  /** torch_frame_ms / frame_ms; null without PyTorch. */
  frame_ratio: number | null;
  /** gflops over the reference conv's GFLOP/s measured alongside. */
  of_peak: number;
}

export interface ReferenceResult {
  name: string;
  /** Median over every reference sample of the run. */
  ms: number;
  gflops: number;
}

export type { TorchStatus } from './torch.js';

export interface BenchResult {
  rows: BenchRow[];
  threads: number;
  runs: number;
  reference: ReferenceResult;
  torch: TorchStatus;
  /** The CPU, for int8 rows whose speed depends on VNNI. */
  cpu: CpuInfo;
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const note = opts.onNote ?? (() => {});
  const selection = await selectModels(opts.models, { modelsDir: opts.modelsDir });
  for (const s of selection.skipped) note(`skipping ${s}`);
  if (!selection.available.length) {
    throw new UserError('no model has its files present; point --models-dir or $ADAIN_MODELS_DIR at the weights (see `adain models`)');
  }

  const torch = await torchStatus(opts.torch, note);
  const worker = torch.used ? TorchWorker.start(torch.used, opts.threads) : null;
  const reference = await ReferenceConv.create(opts.threads);
  const rows: BenchRow[] = [];
  const allRef: number[] = [];
  try {
    for (const m of selection.available) {
      const { net, arch } = await loadBenchNetwork(m, opts.threads);
      const int8 = opts.precisions?.includes('int8') ? await loadInt8(m.spec.encoder.kind, m.spec.encoder.cut, m.encoderFile, m.decoderFile, opts.threads, (line) => note(`${m.spec.name}: ${line}`)) : null;
      let torchOk = worker !== null;
      if (worker) await worker.load(arch).catch((e: Error) => { torchOk = false; note(`PyTorch failed on ${m.spec.name}: ${e.message}`); });
      try {
        for (const size of opts.sizes) {
          note(`${m.spec.name} at ${size}x${size}...`);
          // stylizeImage pads to the network's alignment itself; PyTorch and the FLOP count get that padded size.
          const side = roundUp(size, net.factor);
          const content = image(size, 1), style = image(size, 2);
          const stylise = (n: Network): Measure => ({ run: () => timeMs(() => stylizeImage(n, content, [style])).then(settled) });
          // both networks encode styles in float (Network.encodeStyle), so these are the same statistics
          const stats = await styleStats(net, style);
          const frame = (n: Network): Measure => ({ run: () => timeMs(() => stylizeImage(n, content, [stats])).then(settled) });
          const onError = (e: Error) => note(`PyTorch failed on ${m.spec.name} at ${size}: ${e.message}`);
          const torchRun: Measure | null = torchOk && worker ? { run: () => worker.time(side), onError } : null;
          const torchFrame: Measure | null = torchOk && worker ? { run: () => worker.timeFrame(side), onError } : null;
          const [ortMs, int8Ms, torchMs, ortFrameMs, int8FrameMs, torchFrameMs, refMs] = await interleave(opts.runs, [
            stylise(net), int8 && stylise(int8), torchRun, frame(net), int8 && frame(int8), torchFrame, { run: () => reference.time().then(settled) },
          ]);
          allRef.push(...refMs);
          const flops = stylisationFlops(arch, side);
          rows.push(makeRow(m.spec.name, 'fp32', size, flops, { ms: ortMs, frame: ortFrameMs }, { ms: torchMs, frame: torchFrameMs }, refMs));
          if (int8Ms) rows.push(makeRow(m.spec.name, 'int8', size, flops, { ms: int8Ms, frame: int8FrameMs! }, { ms: torchMs, frame: torchFrameMs }, refMs));
        }
      } finally {
        await net.dispose();
        await int8?.dispose();
      }
    }
  } finally {
    await reference.dispose();
    await worker?.close();
  }
  const refMs = median(allRef);
  return {
    rows, threads: opts.threads, runs: opts.runs, torch, cpu: await cpuInfo(),
    reference: { name: REFERENCE_NAME, ms: round(refMs, 2), gflops: round(REFERENCE_FLOPS / refMs / 1e6, 1) },
  };
}

/** The int8 network when the model's files have a calibration; null (with a note) otherwise. */
async function loadInt8(kind: Parameters<typeof encoderWeights>[0], cut: Parameters<typeof encoderWeights>[1], encoderFile: string, decoderFile: string, threads: number, note: (line: string) => void): Promise<Network | null> {
  const found = await findCalibration(encoderFile, decoderFile);
  if (!found.found) {
    note('no int8 rows: no calibration (run `adain calibrate --model NAME`)');
    return null;
  }
  const enc = encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile);
  const dec = decoderWeights(cut, await readWeights(decoderFile), decoderFile);
  return Network.fromWeights(kind, cut, enc, dec, { threads, int8: selectedRanges(found.calibration) }, decoderFile);
}

interface Samples<T> { ms: T; frame: T }

function makeRow(model: string, precision: Precision, size: number, flops: number, ort: Samples<number[]>, torch: Samples<number[] | null>, refMs: number[]): BenchRow {
  const ms = median(ort.ms), frameMs = median(ort.frame);
  const gflops = flops / ms / 1e6;
  const refGflops = REFERENCE_FLOPS / median(refMs) / 1e6;
  const tMs = torch.ms ? median(torch.ms) : null;
  const tFrame = torch.frame ? median(torch.frame) : null;
  return {
    model, precision, size,
    ms: round(ms, 2),
    frame_ms: round(frameMs, 2),
    gflops: round(gflops, 1),
    torch_ms: tMs === null ? null : round(tMs, 2),
    ratio: tMs === null ? null : round(tMs / ms, 2),
    torch_frame_ms: tFrame === null ? null : round(tFrame, 2),
    frame_ratio: tFrame === null ? null : round(tFrame / frameMs, 2),
    of_peak: round(gflops / refGflops, 3),
  };
}

function image(side: number, seed: number): RgbImage {
  return { width: side, height: side, data: pseudoRandom(3 * side * side, seed) };
}
