/**
 * The studio's HTTP server (Node's http module, no framework): the static front end, the
 * ONNX files the browser runs, and a small JSON/multipart API.
 *
 *   GET  /                          the web app (web/index.html and its modules)
 *   GET  /ort/<file>                onnxruntime-web's browser build (node_modules/onnxruntime-web/dist)
 *   GET  /examples/<file>           the built-in gallery (examples/*.jpg)
 *   GET  /models/<name>/encoder.onnx, /models/<name>/decoder.onnx   built once per model
 *   GET  /api/models                the registry, with availability and ONNX URLs
 *   GET  /api/gallery               the gallery's images
 *   POST /api/stylize               multipart: content, style (1-4), alpha, style_weights,
 *                                   preserve_color, model, style_size, format -> the image
 *   POST /api/stylize-video[?job=ID]  multipart: content (a video), style (1-4), alpha,
 *                                   style_weights, preserve_color, model, style_size, format
 *                                   (mp4, webm, gif), temporal, temporal_blend, max_size -> the
 *                                   clip; needs the system ffmpeg (video-api.ts)
 *   GET  /api/video-jobs/<ID>       {state, frames_done, frames_total, fps, ...} of that job
 *   GET  /api/config                limits, precision, and whether videos work here
 *   GET  /healthz                   {ok, queue, cancelled, models: {name: precision}}
 *
 * Every response carries Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp, which make the page cross-origin isolated so
 * that onnxruntime-web may use SharedArrayBuffer (wasm threads). Every error is JSON
 * {error, status}. Requests whose Host is not this server, and non-GET requests from another
 * site's pages, get 403 (host-guard.ts). Stylisations run in a bounded queue: when it is full
 * the answer is 503 with Retry-After. One time limit covers a stylisation request's body, its
 * wait and its work (--timeout for images, --video-timeout for clips): 408 while the body is
 * still arriving, 503 after; a job whose client has gone, or whose time is up, stops at its
 * next tile or frame.
 */
import { promises as fs } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { UserError } from '../errors.js';
import { DEFAULT_MODEL, findModel, MODELS } from '../models/registry.js';
import { modelStatus } from '../models/resolve.js';
import type { PrecisionOption } from '../quant/precision.js';
import { defaultThreads } from '../runtime/session.js';
import type { Precision } from '../stylize/network.js';
import { DEFAULT_STYLE_SIZE, loadModel, type StyleModel } from '../stylize/style-model.js';
import { HostGuard, parseAllowedHost } from './host-guard.js';
import { HttpError } from './http-error.js';
import { modelUnavailable } from './model-errors.js';
import { parseMultipart } from './multipart.js';
import { BrowserModelCache } from './onnx-models.js';
import { JobQueue, QueueFullError } from './queue.js';
import { EXAMPLES_DIR, ortWebDir, safeJoin, sendFile, WEB_DIR } from './static.js';
import { CONTENT_TYPES, MAX_STYLES, parseStylizeRequest, probeImage, runStylize, StyleStatsCache } from './stylize-api.js';
import { VideoApi } from './video-api.js';

export interface StudioOptions {
  /** Interface to bind (default 127.0.0.1: only this machine can connect). */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Folder with weight files (also $ADAIN_MODELS_DIR). */
  modelsDir?: string;
  /** Download missing weights that have a URL (default false: a web request never starts a download). */
  download?: boolean;
  /** onnxruntime-node threads per stylisation (default all cores). */
  threads?: number;
  /** Model used when a request names none (default cd16x-r41). */
  defaultModel?: string;
  /** Largest upload per file in bytes (default 20 MiB). */
  maxUploadBytes?: number;
  /** Largest image in pixels, content or style (default 25 million). */
  maxPixels?: number;
  /** Stylisations running at once (default 1: each already uses every core). */
  concurrency?: number;
  /** Stylisations waiting behind those; one more gets 503 (default 8). */
  maxQueue?: number;
  /** Longest a stylisation request may take from its headers to its answer (upload, wait and work), in ms (default 60 s). */
  timeoutMs?: number;
  /**
   * More names (NAME or NAME:PORT) the server may be reached under, e.g. behind a reverse
   * proxy; pages served from them may also POST. Loopback names and the bound address always work.
   */
  allowedHosts?: string[];
  /** Style images are scaled so their shorter side is this (default 512). */
  styleSize?: number;
  /** Memory budget of one stylisation in bytes; larger images go in tiles (default 2 GiB). */
  memoryBudget?: number;
  /** Style statistics kept for reuse across requests, keyed by the style's bytes (default 32; 0 turns reuse off). */
  styleCache?: number;
  /** One line per request and per problem; default none. */
  log?: (line: string) => void;
  /** Problems only (internal errors, missing models, with server paths), e.g. even when requests are not logged; default `log`. */
  logError?: (line: string) => void;
  /** Where the front end is (default web/ in the package). */
  webDir?: string;
  /**
   * fp32 (default); int8 (every model needs a calibration, `adain calibrate`; the default model
   * is loaded at the start, so a missing one stops the start); auto: int8 where calibrated and faster.
   */
  precision?: PrecisionOption;
  /** Largest video upload in bytes (default 200 MiB). */
  maxVideoBytes?: number;
  /** Most frames of an uploaded video (default 1800: a minute at 30 fps). */
  maxVideoFrames?: number;
  /** Most pixels of all of a video's frames together, frames x width x height after max_size (default 500 million). */
  maxVideoPixels?: number;
  /** Longest a video request may take from its headers to its answer, in ms (default 15 min). */
  videoTimeoutMs?: number;
  /** Where each video request gets its temporary folder, removed when it ends (default the system's). */
  tempDir?: string;
}

export interface StudioServer {
  server: http.Server;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  host: string;
  port: number;
  queue: JobQueue;
  /** Stylisations stopped because their client went away or their time ran out. */
  cancelled(): number;
  /** Stops listening, closes idle connections and frees the models. */
  close(): Promise<void>;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxUploadBytes: 20 * 1024 * 1024,
  maxPixels: 25e6,
  concurrency: 1,
  maxQueue: 8,
  timeoutMs: 60_000,
  memoryBudget: 2 * 1024 ** 3,
  maxVideoBytes: 200 * 1024 * 1024,
  maxVideoFrames: 1800,
  maxVideoPixels: 500e6,
  videoTimeoutMs: 15 * 60_000,
} as const;

const SECURITY_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

const GALLERY_ROLES: Record<string, 'content' | 'style'> = { 'scream.jpg': 'style' };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.destroy(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message, status }, headers);
}

/** The abort reason when the client hangs up: there is no one left to answer. */
class ClientGoneError extends Error {
  constructor() {
    super('the client disconnected');
    this.name = 'ClientGoneError';
  }
}

export async function startStudio(opts: StudioOptions = {}): Promise<StudioServer> {
  const o = {
    host: opts.host ?? DEFAULTS.host,
    port: opts.port ?? DEFAULTS.port,
    maxUploadBytes: opts.maxUploadBytes ?? DEFAULTS.maxUploadBytes,
    maxPixels: opts.maxPixels ?? DEFAULTS.maxPixels,
    timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
    styleSize: opts.styleSize ?? DEFAULT_STYLE_SIZE,
    memoryBudget: opts.memoryBudget ?? DEFAULTS.memoryBudget,
    defaultModel: opts.defaultModel ?? DEFAULT_MODEL,
    threads: opts.threads ?? defaultThreads(),
    webDir: opts.webDir ?? WEB_DIR,
    precision: opts.precision ?? 'fp32',
    videoTimeoutMs: opts.videoTimeoutMs ?? DEFAULTS.videoTimeoutMs,
  };
  findModel(o.defaultModel);
  const allowedHosts = opts.allowedHosts ?? [];
  for (const h of allowedHosts) parseAllowedHost(h); // a typo should stop the start, not every request
  let guard: HostGuard | undefined;
  let cancelledJobs = 0;
  const log = opts.log ?? (() => {});
  const logError = opts.logError ?? log;
  const resolveOpts = { modelsDir: opts.modelsDir, download: opts.download ?? false };
  const queue = new JobQueue(opts.concurrency ?? DEFAULTS.concurrency, opts.maxQueue ?? DEFAULTS.maxQueue);
  const browserModels = new BrowserModelCache(resolveOpts);
  const statsCache = opts.styleCache === 0 ? undefined : new StyleStatsCache(opts.styleCache ?? 32);
  const ortDir = ortWebDir();
  const models = new Map<string, Promise<StyleModel>>();
  /** What each loaded model runs in (auto decides per model), for /healthz. */
  const precisions = new Map<string, Precision>();

  function getModel(name: string): Promise<StyleModel> {
    let p = models.get(name);
    if (!p) {
      p = loadModel(name, { ...resolveOpts, threads: o.threads, precision: o.precision });
      p.then((m) => precisions.set(name, m.network.precision), () => models.delete(name));
      models.set(name, p);
    }
    return p;
  }

  /** getModel for a request: its failures as the 503 a client may see (no server paths). */
  async function requestModel(name: string): Promise<StyleModel> {
    try {
      return await getModel(name);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      if (/no int8 calibration/.test(err.message)) {
        logError(`model ${name} cannot run in int8: ${err.message}`);
        throw new HttpError(503, `model ${name} has no int8 calibration on this server, which runs with --precision ${o.precision}; `
          + `the server's operator can run \`adain calibrate --model ${name}\` once, or restart adain serve with --precision auto or fp32`);
      }
      throw await modelUnavailable(name, err, resolveOpts, logError);
    }
  }

  const video = new VideoApi({
    limits: {
      maxVideoBytes: opts.maxVideoBytes ?? DEFAULTS.maxVideoBytes,
      maxImageBytes: o.maxUploadBytes,
      maxPixels: o.maxPixels,
      maxFrames: opts.maxVideoFrames ?? DEFAULTS.maxVideoFrames,
      maxTotalPixels: opts.maxVideoPixels ?? DEFAULTS.maxVideoPixels,
      timeoutMs: o.videoTimeoutMs,
    },
    tempDir: opts.tempDir ?? os.tmpdir(),
    queue, model: requestModel, defaultModel: o.defaultModel, styleSize: o.styleSize, memoryBudget: o.memoryBudget, statsCache,
    log, onCancelled: () => { cancelledJobs++; },
  });
  // int8 was asked for explicitly: a missing calibration should stop the start, not fail every request
  if (o.precision === 'int8') await getModel(o.defaultModel);

  async function modelsJson() {
    return Promise.all(MODELS.map(async (m) => {
      const files = await modelStatus(m, resolveOpts);
      const available = files.every((f) => f.localPath !== null && f.problem === null);
      return {
        name: m.name,
        description: m.description,
        default: m.name === o.defaultModel,
        encoder: { kind: m.encoder.kind, cut: m.encoder.cut },
        decoder: { kind: m.decoder.kind },
        available,
        missing: files.filter((f) => f.localPath === null || f.problem !== null).map((f) => ({ file: f.file, problem: f.problem ?? 'not found', url: f.url ?? null })),
        onnx: { encoder: `/models/${m.name}/encoder.onnx`, decoder: `/models/${m.name}/decoder.onnx` },
      };
    }));
  }

  async function galleryJson() {
    const files = (await fs.readdir(EXAMPLES_DIR)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
    return files.map((f) => ({ name: f.replace(/\.[^.]+$/, ''), url: `/examples/${encodeURIComponent(f)}`, role: GALLERY_ROLES[f] ?? 'content' }));
  }

  async function serveOnnx(req: IncomingMessage, res: ServerResponse, name: string, part: string): Promise<void> {
    if (part !== 'encoder.onnx' && part !== 'decoder.onnx' && part !== 'info.json') throw new HttpError(404, `no such file: /models/${name}/${part}`);
    try {
      findModel(name);
    } catch (err) {
      throw new HttpError(404, (err as Error).message);
    }
    let m;
    try {
      m = await browserModels.get(name);
    } catch (err) {
      if (err instanceof UserError) throw await modelUnavailable(name, err, resolveOpts, logError);
      throw err;
    }
    if (part === 'info.json') {
      sendJson(res, 200, { name, featureName: m.featureName, channels: m.channels, factor: m.factor, encoderBytes: m.encoder.length, decoderBytes: m.decoder.length });
      return;
    }
    const [bytes, etag] = part === 'encoder.onnx' ? [m.encoder, m.encoderEtag] : [m.decoder, m.decoderEtag];
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'no-cache');
    if (req.headers['if-none-match'] === etag) { res.writeHead(304); res.end(); return; }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length });
    res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  async function stylize(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    // one budget from the headers to the answer, so a stalled upload cannot hold a connection
    // (and its buffers) longer than a slow job could; the status says which side was slow
    let phase: 'upload' | 'work' = 'upload';
    const cancel = new AbortController();
    const timer = setTimeout(() => cancel.abort(phase === 'upload'
      ? new HttpError(408, `the request body did not arrive within the ${o.timeoutMs / 1000} s limit; send it faster (or raise adain serve --timeout)`, { Connection: 'close' })
      : new HttpError(503, `the request took longer than the ${o.timeoutMs / 1000} s limit (upload, queue and stylisation together); try a smaller image or again later`,
        { 'Retry-After': String(queue.retryAfterSeconds()) })), o.timeoutMs);
    const onClose = () => { if (!res.writableFinished) cancel.abort(new ClientGoneError()); };
    res.on('close', onClose);
    // answers at once when cancelled, even while a tile is still running: the job stops after it
    const cancelled = new Promise<never>((_, reject) => cancel.signal.addEventListener('abort', () => reject(cancel.signal.reason), { once: true }));
    cancelled.catch(() => {});
    try {
      const upload = parseMultipart(req, { maxFileBytes: o.maxUploadBytes, maxFiles: 1 + MAX_STYLES, maxFields: 16, maxFieldBytes: 1024 });
      upload.catch(() => {}); // when the deadline wins, the parse's own failure is not wanted
      const body = await Promise.race([upload, cancelled]);
      phase = 'work';
      const r = parseStylizeRequest(body, o.defaultModel, o.styleSize);
      await probeImage(r.content, 'content', o.maxPixels);
      for (const [i, s] of r.styles.entries()) await probeImage(s, r.styles.length > 1 ? `style ${i + 1}` : 'style', o.maxPixels);

      const job = queue.run(async () => {
        const model = await requestModel(r.model);
        return runStylize(model, r, { maxPixels: o.maxPixels, memoryBudget: o.memoryBudget, statsCache, signal: cancel.signal });
      }, cancel.signal);
      job.catch(() => {});
      const out = await Promise.race([job, cancelled]);
      res.writeHead(200, {
        'Content-Type': CONTENT_TYPES[r.format],
        'Content-Length': out.bytes.length,
        'Content-Disposition': `inline; filename="stylized.${r.format === 'jpeg' ? 'jpg' : r.format}"`,
        'Cache-Control': 'no-store',
        'X-Image-Size': `${out.width}x${out.height}`,
        'X-Model': r.model,
        'Server-Timing': `total;dur=${(performance.now() - started).toFixed(1)}`,
      });
      res.end(out.bytes);
    } catch (err) {
      if (cancel.signal.aborted) {
        const why: unknown = cancel.signal.reason;
        if (phase === 'work') cancelledJobs++;
        if (why instanceof ClientGoneError) {
          log(`${req.method} ${req.url} cancelled after ${(performance.now() - started).toFixed(0)} ms: the client disconnected during the ${phase}`);
          return;
        }
        throw why;
      }
      if (err instanceof QueueFullError) throw new HttpError(503, err.message + '; retry later', { 'Retry-After': String(err.retryAfterS) });
      throw err;
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let p: string;
    try {
      p = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      throw new HttpError(400, 'malformed request URL');
    }
    const method = req.method ?? 'GET';
    if (!guard) throw new HttpError(503, 'the server is starting; retry in a moment', { 'Retry-After': '1' });
    guard.check(method, req.headers);
    const isGet = method === 'GET' || method === 'HEAD';
    const allow = (methods: string) => { throw new HttpError(405, `${method} is not allowed on ${p}; use ${methods}`, { Allow: methods }); };

    if (p === '/api/stylize') {
      if (method !== 'POST') allow('POST');
      return stylize(req, res);
    }
    if (p === '/api/stylize-video') {
      if (method !== 'POST') allow('POST');
      return video.handle(req, res);
    }
    if (!isGet) allow('GET, HEAD');
    const job = /^\/api\/video-jobs\/([^/]+)$/.exec(p);
    if (job) return sendJson(res, 200, video.status(job[1]));
    if (p === '/healthz') {
      return sendJson(res, 200, {
        ok: true, queue: queue.stats(), cancelled: cancelledJobs, uptimeS: Math.round(process.uptime()), models: Object.fromEntries(precisions),
      });
    }
    if (p === '/api/models') return sendJson(res, 200, { default: o.defaultModel, models: await modelsJson() });
    if (p === '/api/gallery') return sendJson(res, 200, { images: await galleryJson() });
    if (p === '/api/config') {
      return sendJson(res, 200, {
        maxUploadBytes: o.maxUploadBytes, maxPixels: o.maxPixels, maxStyles: MAX_STYLES, styleSize: o.styleSize, defaultModel: o.defaultModel,
        precision: o.precision, video: await video.config(),
      });
    }
    let m = /^\/models\/([^/]+)\/([^/]+)$/.exec(p);
    if (m) {
      let name: string;
      try {
        name = decodeURIComponent(m[1]);
      } catch {
        throw new HttpError(400, 'malformed model name in the URL');
      }
      return serveOnnx(req, res, name, m[2]);
    }
    m = /^\/ort\/(.+)$/.exec(p);
    if (m) {
      const file = safeJoin(ortDir, m[1]);
      if (file && /\.(m?js|wasm|map)$/.test(file) && (await sendFile(req, res, file, 'public, max-age=3600'))) return;
      throw new HttpError(404, `no such file: ${p}`);
    }
    m = /^\/examples\/(.+)$/.exec(p);
    if (m) {
      const file = safeJoin(EXAMPLES_DIR, m[1]);
      if (file && /\.(jpe?g|png|webp)$/i.test(file) && (await sendFile(req, res, file, 'public, max-age=3600'))) return;
      throw new HttpError(404, `no such file: ${p}`);
    }
    const file = safeJoin(o.webDir, p === '/' ? 'index.html' : p);
    if (file && (await sendFile(req, res, file))) return;
    throw new HttpError(404, `no such page: ${p}`);
  }

  // Node's own limits cover the headers (and back up ours on the body); it checks them only
  // every connectionsCheckingInterval, 30 s by default, far too coarse for a short --timeout
  const headersTimeout = Math.round(Math.min(20_000, Math.max(1000, o.timeoutMs)));
  const server = http.createServer({
    headersTimeout,
    // a clip may take longer to upload than an image may; each route keeps its own, tighter, limit
    requestTimeout: Math.round(Math.max(o.timeoutMs, o.videoTimeoutMs)) + headersTimeout + 5000,
    connectionsCheckingInterval: Math.round(Math.min(5000, Math.max(250, headersTimeout / 4))),
  }, (req, res) => {
    const started = performance.now();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    res.on('error', () => {}); // a client that hangs up is not our problem
    res.on('finish', () => log(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(0)} ms`));
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        // the body may be unread: do not wait for it on a kept-alive connection
        if ([400, 403, 408, 413, 415].includes(err.status)) res.setHeader('Connection', 'close');
        sendError(res, err.status, err.message, err.headers);
      } else {
        logError(`error on ${req.method} ${req.url}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        sendError(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    const [status, text, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', `the request headers did not arrive within ${headersTimeout / 1000} s; send them at once`]
      : [400, 'Bad Request', `bad request: ${err.message}`];
    const body = JSON.stringify({ error: message, status });
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new UserError(`port ${o.port} on ${o.host} is in use; choose another with --port (0 picks a free one)`)
        : err.code === 'EACCES' ? new UserError(`no permission to listen on ${o.host}:${o.port}; use a port above 1024`)
          : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? new UserError(`cannot listen on ${o.host}: no such address on this machine`) : err);
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      guard = new HostGuard({ bindHost: o.host, boundAddress: a.address, port: a.port, allowedHosts });
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    host: addr.address,
    port: addr.port,
    url: `http://${urlHost === '0.0.0.0' || urlHost === '[::]' ? '127.0.0.1' : urlHost}:${addr.port}`,
    queue,
    cancelled: () => cancelledJobs,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      // a job that timed out may still be running on a model: let it finish before freeing it
      await queue.idle();
      await video.idle();
      for (const p of models.values()) await p.then((m) => m.dispose(), () => {});
      models.clear();
    },
  };
}

