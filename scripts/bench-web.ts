// Speed of the web studio: webcam-mode FPS in headless Chromium (wasm) for cd16x-r31 and
// cd16x-r41 side by side at 256x256, and POST /api/stylize images/s at 512x512. Usage:
//   node --import tsx scripts/bench-web.ts [--models cd16x-r31,cd16x-r41] [--sizes 256,384,512] [--frames 30] [--threads 2] [--api-seconds 10] [--json]
import path from 'node:path';
import { Command } from 'commander';
import { WEBCAM_BENCH_MODELS, formatWebBench, runWebBench } from '../src/bench/web.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got ${v}`);
  return n;
};

const o = new Command('bench-web')
  .option('--models <list>', 'webcam models', (v) => v.split(','), [...WEBCAM_BENCH_MODELS])
  .option('--sizes <list>', 'webcam sizes', (v) => v.split(',').map(int), [256])
  .option('--frames <n>', 'frames timed per size', int, 30)
  .option('--warmup <n>', 'frames before timing', int, 3)
  .option('--threads <n>', 'wasm threads in the page (default: all cores)', int)
  .option('--api-seconds <s>', 'seconds of API load per row (0: none)', int, 10)
  .option('--api-size <px>', 'API content side', int, 512)
  .option('--models-dir <dir>', 'weights folder', process.env.ADAIN_MODELS_DIR ?? path.resolve(import.meta.dirname, '../../shared/models'))
  .option('--json', 'print JSON')
  .parse()
  .opts<{ models: string[]; sizes: number[]; frames: number; warmup: number; threads?: number; apiSeconds: number; apiSize: number; modelsDir: string; json?: boolean }>();

const r = await runWebBench({
  modelsDir: o.modelsDir, models: o.models, sizes: o.sizes, frames: o.frames, warmup: o.warmup, threads: o.threads,
  apiSeconds: o.apiSeconds, apiSize: o.apiSize, onNote: (l) => process.stderr.write(`bench-web: ${l}\n`),
});
process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatWebBench(r)}\n`);
