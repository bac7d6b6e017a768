// Load test of `adain serve`'s POST /api/stylize: a server on 127.0.0.1 (child process), 16
// autocannon clients for 30 s by default. Exits 1 if anything but 200 and the documented 503
// (queue full) came back. Usage:
//   node --import tsx scripts/loadtest.ts [--duration 30] [--connections 16] [--size 256] [--models-dir ../shared/models] [--json]
import path from 'node:path';
import { Command } from 'commander';
import { formatLoadResult, runLoadTest } from '../src/web/loadtest.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got ${v}`);
  return n;
};

const o = new Command('loadtest')
  .option('--duration <s>', 'seconds of load', int, 30)
  .option('--connections <n>', 'concurrent clients', int, 16)
  .option('--size <px>', 'content side in pixels', int, 256)
  .option('--style-size <px>', 'style side in pixels', int, 256)
  .option('--concurrency <n>', 'server: stylisations at once', int)
  .option('--queue <n>', 'server: waiting stylisations before 503', int)
  .option('--threads <n>', 'server: onnxruntime threads', int)
  .option('--models-dir <dir>', 'weights folder', process.env.ADAIN_MODELS_DIR ?? path.resolve(import.meta.dirname, '../../shared/models'))
  .option('--json', 'print JSON')
  .parse()
  .opts<{ duration: number; connections: number; size: number; styleSize: number; concurrency?: number; queue?: number; threads?: number; modelsDir: string; json?: boolean }>();

const r = await runLoadTest({
  modelsDir: o.modelsDir, connections: o.connections, durationS: o.duration, size: o.size, styleSize: o.styleSize,
  concurrency: o.concurrency, maxQueue: o.queue, threads: o.threads,
});
process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatLoadResult(r)}\n`);
process.exitCode = r.unexpected > 0 || r.okPerS === 0 ? 1 : 0;
