/**
 * `adain bench export`: ms per frame of the exported model in onnxruntime, per size and
 * precision. The model is built exactly as `adain export` builds it (a baked style, fixed
 * size); validation is skipped since only speed is measured here.
 */
import { layerShapes } from './architecture.js';
import { convFlops } from './flops.js';
import { median, pseudoRandom, timeMs } from '../runtime/stats.js';
import { settle } from '../runtime/settle.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import type { PixelFormat } from '../export/formats.js';
import { buildExportBytes, checkExportSize, DEFAULT_VALIDATION_STYLE, loadExportModel, stylizerSpec } from '../export/export.js';
import { DEFAULT_OPSET } from '../export/ops.js';
import { ExportedSession } from '../export/validate.js';

export type Precision = 'float32' | 'float16';

export interface ExportBenchOptions {
  modelsDir?: string;
  model?: string;
  /** Square sides (default 256, 512). */
  sizes?: number[];
  precisions?: Precision[];
  inputFormat?: PixelFormat;
  outputFormat?: PixelFormat;
  opset?: number;
  /** Timed runs after one warm-up (default 5). */
  runs?: number;
  threads?: number;
  onNote?: (line: string) => void;
}

export interface ExportBenchRow {
  model: string;
  size: number;
  precision: Precision;
  /** Median ms of one frame (one session.run). */
  ms: number;
  fps: number;
  /** Conv GFLOP of one frame (encoder at the content size, then the decoder). */
  gflop: number;
  /** Size of the exported file in MB. */
  file_mb: number;
}

export interface ExportBenchResult {
  rows: ExportBenchRow[];
  threads: number;
  runs: number;
  opset: number;
  input: PixelFormat;
  output: PixelFormat;
}

export const DEFAULT_EXPORT_BENCH_SIZES = [256, 512];

export async function runExportBench(opts: ExportBenchOptions = {}): Promise<ExportBenchResult> {
  const note = opts.onNote ?? (() => {});
  const sizes = opts.sizes ?? DEFAULT_EXPORT_BENCH_SIZES;
  const precisions = opts.precisions ?? ['float32', 'float16'];
  const runs = opts.runs ?? 5;
  const threads = opts.threads ?? 1;
  const input = opts.inputFormat ?? 'rgb-float', output = opts.outputFormat ?? 'rgb-float';
  const opset = opts.opset ?? DEFAULT_OPSET;
  const loaded = await loadExportModel({ model: opts.model ?? DEFAULT_MODEL, modelsDir: opts.modelsDir, threads, download: false });
  const rows: ExportBenchRow[] = [];
  try {
    for (const size of sizes) checkExportSize(size, size, loaded.factor, '--sizes');
    const stats = await loaded.reference.styleStats(DEFAULT_VALIDATION_STYLE, { styleSize: 256 });
    for (const size of sizes) {
      const content = { width: size, height: size, data: pseudoRandom(3 * size * size, size) };
      for (const precision of precisions) {
        const fp16 = precision === 'float16';
        const spec = stylizerSpec(loaded, { width: size, height: size, opset, inputFormat: input, outputFormat: output, fp16, style: 'scream.jpg' }, stats, 'scream.jpg');
        const bytes = buildExportBytes(loaded, spec, fp16);
        note(`${loaded.spec.name} ${size}x${size} ${precision}: ${runs} runs`);
        const session = await ExportedSession.create(bytes, { input, output, style: 'baked' }, { threads });
        try {
          const feeds = session.feeds({ content });
          await session.runFeeds(feeds); // warm-up
          const samples: number[] = [];
          for (let r = 0; r < runs; r++) {
            await settle();
            samples.push(await timeMs(() => session.runFeeds(feeds)));
          }
          const ms = median(samples);
          const net = loaded.network;
          const f = loaded.factor;
          const flops = convFlops(layerShapes(net.encoderLayers, net.encoder), size, size) + convFlops(layerShapes(net.decoderLayers, net.decoder), size / f, size / f);
          rows.push({ model: loaded.spec.name, size, precision, ms, fps: 1000 / ms, gflop: flops / 1e9, file_mb: bytes.length / 1e6 });
        } finally {
          await session.dispose();
        }
      }
    }
  } finally {
    await loaded.reference.dispose();
  }
  return { rows, threads, runs, opset, input, output };
}

const HEADERS = ['model', 'size', 'precision', 'ms/frame', 'fps', 'GFLOP/frame', 'file MB'] as const;

export function formatExportBenchTable(r: ExportBenchResult): string {
  const cells = r.rows.map((row) => [
    row.model, `${row.size}x${row.size}`, row.precision, row.ms.toFixed(1), row.fps.toFixed(1), row.gflop.toFixed(1), row.file_mb.toFixed(1),
  ]);
  const all = [[...HEADERS], ...cells];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => (i < 3 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join('  ').trimEnd();
  return [...all.map(line), '', exportBenchFooter(r)].join('\n') + '\n';
}

export function exportBenchFooter(r: ExportBenchResult): string {
  return `onnxruntime CPU, ${r.threads} thread${r.threads === 1 ? '' : 's'}; median of ${r.runs} run${r.runs === 1 ? '' : 's'} after 1 warm-up; ` +
    `exported as adain export would (baked style, opset ${r.opset}, ${r.input} in, ${r.output} out). ` +
    'float16 runs in onnxruntime\'s CPU provider through inserted casts: it says nothing about Myriad X speed.';
}

export function formatExportBenchJson(r: ExportBenchResult): string {
  return `${JSON.stringify(r.rows, null, 2)}\n`;
}
