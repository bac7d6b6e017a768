/**
 * Load test and API benchmark for the studio server, with autocannon (a devDependency, loaded
 * only here). The server runs in a child process on 127.0.0.1 (loopback only) so that the load
 * generator does not share its event loop; every run is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { StudioOptions } from './server.js';
import { EXAMPLES_DIR } from './static.js';

export interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

/** Starts the studio in a child Node process (same loader flags as this one, e.g. tsx). */
export async function startServerProcess(opts: StudioOptions): Promise<ServerProcess> {
  const self = fileURLToPath(import.meta.url);
  const entry = path.join(path.dirname(self), self.endsWith('.ts') ? 'serve-main.ts' : 'serve-main.js');
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, entry, JSON.stringify({ ...opts, log: undefined })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`the server process said: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`the server process exited with code ${code} before listening`)));
    child.once('error', reject);
  });
  return {
    url,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) { resolve(); return; }
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => { clearTimeout(kill); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

/** A multipart/form-data body with a fixed boundary, as bytes (autocannon sends it as is). */
export function multipartBody(parts: { name: string; value: string | Buffer; filename?: string; type?: string }[]): { body: Buffer; contentType: string } {
  const boundary = '----adainLoadTest7MA4YWxkTrZu0gW';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(typeof p.value === 'string' ? Buffer.from(p.value) : p.value);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A stylisation request: the astronaut at size x size, The Scream scaled to the style size. */
export async function stylizeRequestBody(size: number, styleSize: number): Promise<{ body: Buffer; contentType: string }> {
  const content = await sharp(readFileSync(path.join(EXAMPLES_DIR, 'astronaut.jpg'))).resize(size, size, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  const style = await sharp(readFileSync(path.join(EXAMPLES_DIR, 'scream.jpg'))).resize(styleSize, styleSize, { fit: 'outside' }).jpeg({ quality: 90 }).toBuffer();
  return multipartBody([
    { name: 'content', value: content, filename: 'content.jpg', type: 'image/jpeg' },
    { name: 'style', value: style, filename: 'style.jpg', type: 'image/jpeg' },
    { name: 'alpha', value: '0.8' },
    { name: 'style_size', value: String(styleSize) },
  ]);
}

export interface LoadResult {
  connections: number;
  durationS: number;
  requests: number;
  /** Successful stylisations per second. */
  okPerS: number;
  /** All answers per second. */
  requestsPerS: number;
  statusCounts: Record<string, number>;
  /** Connection errors and timeouts (autocannon's errors include timeouts). */
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Latency of the 200 answers only. */
  okLatencyMs: { p50: number; p99: number; max: number } | null;
  /** Non-2xx answers other than 503, and connection errors: anything but the documented overload answer. */
  unexpected: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Runs autocannon against POST {url}/api/stylize for `durationS` seconds. */
export async function runLoad(url: string, req: { body: Buffer; contentType: string }, connections: number, durationS: number): Promise<LoadResult> {
  const { default: autocannon } = await import('autocannon');
  const all: number[] = [], ok: number[] = [];
  const instance = autocannon({
    url: `${url}/api/stylize`, method: 'POST', connections, duration: durationS, timeout: 60,
    headers: { 'content-type': req.contentType }, body: req.body,
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    all.push(ms);
    if (status === 200) ok.push(ms);
  });
  const r = await instance;
  all.sort((a, b) => a - b);
  ok.sort((a, b) => a - b);
  const statusCounts: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCounts[code] = s.count;
  const unexpected = Object.entries(statusCounts).filter(([code]) => code !== '200' && code !== '503').reduce((a, [, n]) => a + n, 0) + r.errors;
  return {
    connections, durationS: r.duration, requests: all.length,
    okPerS: (statusCounts['200'] ?? 0) / r.duration,
    requestsPerS: all.length / r.duration,
    statusCounts, errors: r.errors, timeouts: r.timeouts,
    latencyMs: { p50: percentile(all, 50), p99: percentile(all, 99), max: all.at(-1) ?? NaN },
    okLatencyMs: ok.length ? { p50: percentile(ok, 50), p99: percentile(ok, 99), max: ok.at(-1)! } : null,
    unexpected,
  };
}

export interface LoadTestOptions {
  modelsDir?: string;
  connections?: number;
  durationS?: number;
  /** Content side in pixels (default 256). */
  size?: number;
  /** Style side (default 256). */
  styleSize?: number;
  /** Server settings (defaults: the server's own). */
  concurrency?: number;
  maxQueue?: number;
  timeoutMs?: number;
  threads?: number;
  styleCache?: number;
}

/** Starts a server, holds `connections` clients for `durationS` seconds, stops the server. */
export async function runLoadTest(o: LoadTestOptions = {}): Promise<LoadResult & { size: number }> {
  const size = o.size ?? 256, styleSize = o.styleSize ?? 256;
  const server = await startServerProcess({
    port: 0, modelsDir: o.modelsDir, concurrency: o.concurrency, maxQueue: o.maxQueue, timeoutMs: o.timeoutMs, threads: o.threads, styleCache: o.styleCache,
  });
  try {
    const req = await stylizeRequestBody(size, styleSize);
    // one request first: loads the model, so the timed run measures steady state
    const warm = await fetch(`${server.url}/api/stylize`, { method: 'POST', body: new Uint8Array(req.body), headers: { 'content-type': req.contentType } });
    if (warm.status !== 200) throw new Error(`the warm-up request failed: ${warm.status} ${await warm.text()}`);
    await warm.arrayBuffer();
    return { ...(await runLoad(server.url, req, o.connections ?? 16, o.durationS ?? 30)), size };
  } finally {
    await server.stop();
  }
}

export function formatLoadResult(r: LoadResult & { size?: number }, title = 'load test'): string {
  const codes = Object.entries(r.statusCounts).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none';
  const ok = r.okLatencyMs ? `p50 ${r.okLatencyMs.p50.toFixed(0)} ms, p99 ${r.okLatencyMs.p99.toFixed(0)} ms` : 'none';
  return [
    `${title}: ${r.connections} connections for ${r.durationS.toFixed(1)} s${r.size ? `, ${r.size}x${r.size} content` : ''}`,
    `  answers      ${r.requests} (${r.requestsPerS.toFixed(1)}/s); status ${codes}; connection errors ${r.errors}, timeouts ${r.timeouts}`,
    `  images/s     ${r.okPerS.toFixed(2)}`,
    `  latency      all: p50 ${r.latencyMs.p50.toFixed(0)} ms, p99 ${r.latencyMs.p99.toFixed(0)} ms, max ${r.latencyMs.max.toFixed(0)} ms; 200s: ${ok}`,
    `  unexpected   ${r.unexpected} (anything but 200 and 503)`,
  ].join('\n');
}
