/**
 * The studio's speed: webcam-mode FPS in headless Chromium (onnxruntime-web on wasm, the page's
 * own webcam loop fed by Chromium's fake camera) for each webcam model and size, and POST
 * /api/stylize images/s at 512x512. Needs Chromium (see browser.ts), playwright-core and autocannon.
 */
import { promises as fs } from 'node:fs';
import type { ArchitectureShape } from './architecture.js';
import { cpuInfo, describeCpu } from './cpu.js';
import { encodeDecodeFlops } from './flops.js';
import { loadBenchWeights, selectModels } from './load.js';
import { REFERENCE_DIMS, REFERENCE_FLOPS, REFERENCE_NAME, referenceConvModel } from './reference-conv.js';
import type { StudioOptions } from '../web/server.js';
import { EVALUATE_SHIM, FAKE_CAMERA_FLAGS, launchChromium } from '../web/browser.js';
import { runLoad, startServerProcess, stylizeRequestBody, type LoadResult } from '../web/loadtest.js';

/** The webcam models compared by default: the real-time one and the default image model. */
export const WEBCAM_BENCH_MODELS = ['cd16x-r31', 'cd16x-r41'] as const;

export interface WebcamBenchRow {
  model: string;
  size: number;
  frames: number;
  fps: number;
  msPerFrame: number;
  stagesMs: { capture: number; encode: number; adain: number; decode: number; draw: number };
  backend: string;
  threads: number;
  /** Conv GFLOP/s of the encode + decode stages (null when the model's weights are not on disk here). */
  gflops: number | null;
}

export interface ApiBenchRow {
  size: number;
  /** 'cached': the same style each time (its statistics are reused); 'cold': style encoded every time. */
  style: 'cached' | 'cold';
  imagesPerS: number;
  p50Ms: number;
  p99Ms: number;
  load: LoadResult;
}

export interface WebBenchOptions {
  modelsDir?: string;
  /** Webcam models, side by side in one page (default WEBCAM_BENCH_MODELS). */
  models?: string[];
  /** Webcam sizes (default 256). */
  sizes?: number[];
  /** Frames timed per size, after `warmup` (defaults 30 and 3). */
  frames?: number;
  warmup?: number;
  /** wasm threads in the page (default: the browser's hardwareConcurrency). */
  threads?: number;
  /** Seconds of API load per row (default 10; 0 skips the API rows). */
  apiSeconds?: number;
  /** API content side (default 512). */
  apiSize?: number;
  /** Server settings. */
  server?: StudioOptions;
  onNote?: (line: string) => void;
}

export interface WebBenchResult {
  webcam: WebcamBenchRow[];
  /** The same runtime in the page on one large 3x3 conv: the ceiling of its conv kernels. */
  reference: { name: string; ms: number; gflops: number } | null;
  api: ApiBenchRow[];
  cores: number;
  /** The CPU line of `adain bench`, and the SIMD extensions wasm SIMD kernels are compiled down to. */
  cpu: string;
}

/** Whether the host CPU has the vector extensions the browser's wasm SIMD code can use (Linux only). */
async function simdFlags(): Promise<string> {
  try {
    const text = await fs.readFile('/proc/cpuinfo', 'utf8');
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
    return ['sse4_1', 'avx2', 'fma', 'avx512f'].map((f) => `${f}: ${flags.has(f) ? 'yes' : 'no'}`).join(', ');
  } catch {
    return 'flags unknown';
  }
}

export async function runWebBench(o: WebBenchOptions = {}): Promise<WebBenchResult> {
  const note = o.onNote ?? (() => {});
  const server = await startServerProcess({ port: 0, modelsDir: o.modelsDir, ...o.server });
  const webcam: WebcamBenchRow[] = [];
  const api: ApiBenchRow[] = [];
  let cores = 0;
  let reference: WebBenchResult['reference'] = null;
  const models = o.models ?? [...WEBCAM_BENCH_MODELS];
  const archs = new Map<string, ArchitectureShape | null>();
  for (const m of models) archs.set(m, await webcamArchitecture(m, o.modelsDir));
  const cpu = `${describeCpu(await cpuInfo())}; ${await simdFlags()}`;
  try {
    const browser = await launchChromium(FAKE_CAMERA_FLAGS);
    try {
      const page = await browser.newPage();
      await page.addInitScript(EVALUATE_SHIM);
      const q = new URLSearchParams({ ep: 'wasm' });
      if (o.threads) q.set('threads', String(o.threads));
      await page.goto(`${server.url}/?${q}`);
      await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 60_000 });
      if ((await page.evaluate(() => document.body.dataset.ready)) !== 'true') throw new Error(`the page failed to start: ${await page.textContent('#error')}`);
      cores = await page.evaluate(() => navigator.hardwareConcurrency);
      for (const size of o.sizes ?? [256]) {
        for (const model of models) {
          note(`webcam ${model} ${size}x${size}: ${o.frames ?? 30} frames`);
          const row = await page.evaluate(
            (a) => (window as unknown as { studio: { benchmarkWebcam: (x: unknown) => Promise<Omit<WebcamBenchRow, 'gflops'>> } }).studio.benchmarkWebcam(a),
            { size, frames: o.frames ?? 30, warmup: o.warmup ?? 3, model },
          );
          if (row.model !== model) throw new Error(`the page ran ${row.model}, not ${model}`);
          const netMs = row.stagesMs.encode + row.stagesMs.decode;
          const arch = archs.get(model);
          webcam.push({ ...row, gflops: arch && netMs > 0 ? encodeDecodeFlops(arch, size) / netMs / 1e6 : null });
          note(`  ${row.fps.toFixed(2)} FPS`);
        }
      }
      note(`reference: ${REFERENCE_NAME} in the page`);
      const ms = await page.evaluate(timeReferenceInPage, { model: Buffer.from(referenceConvModel()).toString('base64'), dims: REFERENCE_DIMS, runs: 10 });
      reference = { name: REFERENCE_NAME, ms, gflops: REFERENCE_FLOPS / ms / 1e6 };
    } finally {
      await browser.close();
    }
    const seconds = o.apiSeconds ?? 10;
    if (seconds > 0) {
      const size = o.apiSize ?? 512;
      const req = await stylizeRequestBody(size, 512);
      const warm = await fetch(`${server.url}/api/stylize`, { method: 'POST', body: new Uint8Array(req.body), headers: { 'content-type': req.contentType } });
      if (warm.status !== 200) throw new Error(`the API warm-up failed: ${warm.status} ${await warm.text()}`);
      await warm.arrayBuffer();
      // as many clients as the server runs jobs, plus one waiting: busy all the time, never refused
      const connections = (o.server?.concurrency ?? 1) + 1;
      note(`API ${size}x${size}, style statistics reused: ${seconds} s`);
      const cached = await runLoad(server.url, req, connections, seconds);
      api.push(apiRow(size, 'cached', cached));
      await server.stop();
      const cold = await startServerProcess({ port: 0, modelsDir: o.modelsDir, ...o.server, styleCache: 0 });
      try {
        const w2 = await fetch(`${cold.url}/api/stylize`, { method: 'POST', body: new Uint8Array(req.body), headers: { 'content-type': req.contentType } });
        await w2.arrayBuffer();
        note(`API ${size}x${size}, style encoded every time: ${seconds} s`);
        api.push(apiRow(size, 'cold', await runLoad(cold.url, req, connections, seconds)));
      } finally {
        await cold.stop();
      }
    }
  } finally {
    await server.stop();
  }
  return { webcam, reference, api, cores, cpu };
}

/** Runs in the page: the median ms of the reference conv on the studio's own onnxruntime-web. */
async function timeReferenceInPage(a: { model: string; dims: number[]; runs: number }): Promise<number> {
  type Ort = {
    InferenceSession: { create(b: Uint8Array, o: object): Promise<{ run(f: object): Promise<unknown>; release(): Promise<void> }> };
    Tensor: new (t: string, d: Float32Array, dims: number[]) => object;
  };
  const rt = (window as unknown as { studio: { state: { rt: { ort: Ort; executionProviders: string[] } } } }).studio.state.rt;
  const bytes = Uint8Array.from(atob(a.model), (ch) => ch.charCodeAt(0));
  const session = await rt.ort.InferenceSession.create(bytes, { executionProviders: rt.executionProviders, graphOptimizationLevel: 'all' });
  const x = new rt.ort.Tensor('float32', Float32Array.from({ length: a.dims.reduce((p, q) => p * q, 1) }, () => Math.random()), a.dims);
  const times: number[] = [];
  await session.run({ x });
  for (let i = 0; i < a.runs; i++) {
    const t0 = performance.now();
    await session.run({ x });
    times.push(performance.now() - t0);
  }
  await session.release();
  times.sort((p, q) => p - q);
  return times[Math.floor(times.length / 2)];
}

/** Layer shapes of the webcam model for the FLOP count; null when its files are not present. */
async function webcamArchitecture(model: string, modelsDir: string | undefined): Promise<ArchitectureShape | null> {
  const [m] = (await selectModels([model], { modelsDir })).available;
  return m ? (await loadBenchWeights(m)).arch : null;
}

function apiRow(size: number, style: 'cached' | 'cold', load: LoadResult): ApiBenchRow {
  return { size, style, imagesPerS: load.okPerS, p50Ms: load.okLatencyMs?.p50 ?? NaN, p99Ms: load.okLatencyMs?.p99 ?? NaN, load };
}

export function formatWebBench(r: WebBenchResult): string {
  const lines = [
    `Webcam mode in headless Chromium (onnxruntime-web ${r.webcam[0]?.backend ?? 'wasm'}, ${r.webcam[0]?.threads ?? '?'} threads, ${r.cores} cores):`,
    `  ${r.cpu}`,
  ];
  lines.push('  model       size      FPS   ms/frame  (capture  encode  adain  decode  draw)  GFLOP/s  of_peak');
  for (const w of r.webcam) {
    const s = w.stagesMs;
    const rate = w.gflops === null ? '       -        -' : `${w.gflops.toFixed(1).padStart(9)} ${r.reference ? `${((100 * w.gflops) / r.reference.gflops).toFixed(0)}%`.padStart(8) : '       -'}`;
    lines.push(`  ${w.model.padEnd(11)} ${`${w.size}x${w.size}`.padEnd(8)} ${w.fps.toFixed(2).padStart(5)} ${w.msPerFrame.toFixed(0).padStart(9)}   (${[s.capture, s.encode, s.adain, s.decode, s.draw].map((v) => v.toFixed(1).padStart(6)).join(' ')})${rate}`);
  }
  if (r.reference) lines.push(`  GFLOP/s: convolutions of encode + decode; of_peak reference: ${r.reference.name} in the page = ${r.reference.gflops.toFixed(1)} GFLOP/s (${r.reference.ms.toFixed(1)} ms)`);
  if (r.api.length) {
    lines.push('HTTP API, POST /api/stylize (onnxruntime-node in the server):');
    for (const a of r.api) {
      lines.push(`  ${a.size}x${a.size} style ${a.style.padEnd(6)} ${a.imagesPerS.toFixed(2)} images/s, p50 ${a.p50Ms.toFixed(0)} ms, p99 ${a.p99Ms.toFixed(0)} ms (${a.load.connections} clients, ${a.load.durationS.toFixed(0)} s; status ${JSON.stringify(a.load.statusCounts)})`);
    }
  }
  return lines.join('\n');
}
