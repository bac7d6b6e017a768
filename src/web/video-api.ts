/**
 * POST /api/stylize-video and GET /api/video-jobs/<id>.
 *
 * A clip can be hundreds of MiB, so unlike the image API its upload is streamed to a private
 * temporary folder instead of memory. Everything that can be refused without the network is
 * refused before the job queue: the fields, the style images' headers, ffprobe's view of the
 * clip (not a video, corrupt, no video stream) and the frame and pixel budgets. The job then
 * runs StyleModel.stylizeVideo into the same folder, the clip is streamed back, and the folder
 * is removed whatever happened (success, error, timeout, a client that left).
 *
 * Progress: the answer comes only when the clip is done, so a client that wants progress names
 * the job itself (`?job=<id>` on the POST, an id it made up, e.g. a UUID) and polls
 * GET /api/video-jobs/<id> meanwhile. Ids live in memory for a few minutes after the job ends.
 */
import { createReadStream, promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { quoteName, type RgbImage } from '../image/io.js';
import type { ChannelStats } from '../stylize/features.js';
import type { StyleModel } from '../stylize/style-model.js';
import { availableEncoders, runTool } from '../video/ffmpeg.js';
import { videoFormatFromPath } from '../video/formats.js';
import { probeVideo, type VideoInfo } from '../video/probe.js';
import { outputSize, type VideoResult } from '../video/stylize-video.js';
import { HttpError } from './http-error.js';
import type { MultipartBody, UploadedFile } from './multipart.js';
import { JobQueue, QueueFullError } from './queue.js';
import { mib, receiveUpload, type ReceivedVideo, type VideoUpload } from './video-upload.js';
import { decodeUpload, MAX_STYLES, parseStylizeRequest, probeImage, StyleStatsCache, type StylizeRequest } from './stylize-api.js';

export type VideoOutputFormat = 'mp4' | 'webm' | 'gif';

export const VIDEO_CONTENT_TYPES: Record<VideoOutputFormat, string> = { mp4: 'video/mp4', webm: 'video/webm', gif: 'image/gif' };
const VIDEO_ENCODERS: Record<VideoOutputFormat, string> = { mp4: 'libx264', webm: 'libvpx-vp9', gif: 'gif' };
const VIDEO_FORMATS = Object.keys(VIDEO_CONTENT_TYPES) as VideoOutputFormat[];

/** The fields the image API shares with this one, and those only a clip has. */
const SHARED_FIELDS = ['content', 'style', 'alpha', 'style_weights', 'preserve_color', 'model', 'style_size'] as const;
const VIDEO_ONLY_FIELDS = ['format', 'temporal', 'temporal_blend', 'max_size'] as const;
export const STYLIZE_VIDEO_FIELDS: readonly string[] = [...SHARED_FIELDS, ...VIDEO_ONLY_FIELDS];

/** Client-chosen job ids: long enough not to collide by chance, plain enough for a URL. */
const JOB_ID = /^[A-Za-z0-9_-]{8,64}$/;

export interface VideoLimits {
  /** Largest clip upload, in bytes. */
  maxVideoBytes: number;
  /** Largest style image upload, in bytes (the image API's limit). */
  maxImageBytes: number;
  /** Largest frame of the clip and largest style image, in pixels (the image API's limit). */
  maxPixels: number;
  /** Most frames in one clip. */
  maxFrames: number;
  /** Most pixels of all stylised frames together (frames x width x height, after max_size). */
  maxTotalPixels: number;
  /** One limit from the request's headers to its answer: upload, wait and work, in ms. */
  timeoutMs: number;
}

export interface VideoApiOptions {
  limits: VideoLimits;
  /** Each request gets its own folder in here (adain-video-*), removed when it ends. */
  tempDir: string;
  queue: JobQueue;
  /** The loaded model; its failures are already HttpErrors for the client. */
  model: (name: string) => Promise<StyleModel>;
  defaultModel: string;
  styleSize: number;
  memoryBudget: number;
  statsCache?: StyleStatsCache;
  log: (line: string) => void;
  /** Counts a job stopped because its client left or its time ran out (the server's /healthz total). */
  onCancelled: () => void;
}

export interface StylizeVideoRequest extends Omit<StylizeRequest, 'content' | 'format' | 'transform'> {
  format: VideoOutputFormat;
  temporal?: number;
  temporalBlend?: number;
  maxSize?: number;
}

// ---------- progress ----------

export type VideoJobState = 'uploading' | 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** What GET /api/video-jobs/<id> answers. */
export interface VideoJobStatus {
  id: string;
  state: VideoJobState;
  bytes_received: number;
  frames_done: number;
  /** From the container before the run (may be an estimate), the real count once done. */
  frames_total: number;
  /** Frames per second of the stylisation so far. */
  fps: number;
  elapsed_s: number;
  width?: number;
  height?: number;
  error?: string;
}

interface JobRecord {
  status: VideoJobStatus;
  started: number;
  finishedAt?: number;
}

/** The jobs clients named, kept a while after they end so that the last poll sees the outcome. */
export class VideoJobs {
  private readonly jobs = new Map<string, JobRecord>();

  constructor(private readonly keepMs = 5 * 60_000, private readonly capacity = 1000) {}

  start(id: string): JobRecord {
    const now = performance.now();
    for (const [k, j] of this.jobs) if (j.finishedAt !== undefined && now - j.finishedAt > this.keepMs) this.jobs.delete(k);
    const old = this.jobs.get(id);
    if (old && old.finishedAt === undefined) throw new HttpError(409, `video job "${id}" is already running; give each request a new job id (e.g. a random UUID)`, { Connection: 'close' });
    this.jobs.delete(id);
    if (this.jobs.size >= this.capacity) {
      // finished jobs go first, oldest first (a Map iterates in insertion order)
      for (const [k, j] of this.jobs) {
        if (j.finishedAt !== undefined) { this.jobs.delete(k); break; }
      }
      if (this.jobs.size >= this.capacity) throw new HttpError(503, `too many video jobs in progress (${this.capacity}); retry later`, { 'Retry-After': '30' });
    }
    const rec: JobRecord = { started: now, status: { id, state: 'uploading', bytes_received: 0, frames_done: 0, frames_total: 0, fps: 0, elapsed_s: 0 } };
    this.jobs.set(id, rec);
    return rec;
  }

  finish(rec: JobRecord, state: 'done' | 'failed' | 'cancelled', error?: string): void {
    rec.finishedAt = performance.now();
    rec.status.state = state;
    if (error !== undefined) rec.status.error = error;
  }

  get(id: string): VideoJobStatus | undefined {
    const rec = this.jobs.get(id);
    if (!rec) return undefined;
    const end = rec.finishedAt ?? performance.now();
    return { ...rec.status, elapsed_s: Math.round((end - rec.started) / 100) / 10 };
  }
}

export function parseJobId(value: string | null): string | undefined {
  if (value === null) return undefined;
  if (!JOB_ID.test(value)) throw new HttpError(400, `job id ${JSON.stringify(value.slice(0, 80))} is not 8-64 letters, digits, "-" or "_"; use e.g. a random UUID`);
  return value;
}

// ---------- ffmpeg on this server ----------

let support: Promise<Set<string>> | undefined;

/**
 * The encoders of this server's ffmpeg, after checking that ffprobe runs too. Only success is
 * kept: an operator who installs ffmpeg should not have to restart the server.
 */
function videoEncoders(): Promise<Set<string>> {
  support ??= runTool('ffprobe', ['-version']).then(() => availableEncoders());
  support.catch(() => { support = undefined; });
  return support;
}

/** The 503 for a server whose ffmpeg is missing or lacks the encoder a format needs. */
async function requireEncoders(format?: VideoOutputFormat): Promise<void> {
  let encoders: Set<string>;
  try {
    encoders = await videoEncoders();
  } catch (err) {
    if (err instanceof UserError) throw new HttpError(503, `this server cannot stylise videos: ${err.message}`, { Connection: 'close' });
    throw err;
  }
  if (format && !encoders.has(VIDEO_ENCODERS[format])) {
    const others = VIDEO_FORMATS.filter((f) => encoders.has(VIDEO_ENCODERS[f]));
    throw new HttpError(503, `this server's ffmpeg has no ${VIDEO_ENCODERS[format]} encoder, so it cannot write ${format}${others.length ? `; choose format ${others.join(' or ')}` : ''}`);
  }
}

/** For /api/config: whether videos work here, and in which formats. */
export async function videoSupport(): Promise<{ available: boolean; formats: VideoOutputFormat[]; problem?: string }> {
  try {
    const encoders = await videoEncoders();
    return { available: true, formats: VIDEO_FORMATS.filter((f) => encoders.has(VIDEO_ENCODERS[f])) };
  } catch (err) {
    return { available: false, formats: [], problem: err instanceof UserError ? err.message : 'ffmpeg could not be run' };
  }
}

// ---------- the upload ----------

// ---------- the fields ----------

function numberField(fields: Map<string, string>, name: string, min: number, max: number, integer = false): number | undefined {
  const v = fields.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new HttpError(400, `field "${name}" must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Checks the fields; every problem is a 400 naming the field (the shared ones exactly as /api/stylize does). */
export function parseVideoRequest(body: VideoUpload, defaultModel: string, defaultStyleSize: number): StylizeVideoRequest & { content: ReceivedVideo } {
  for (const name of [...body.fields.keys(), ...body.files.map((f) => f.field)]) {
    if (!STYLIZE_VIDEO_FIELDS.includes(name)) throw new HttpError(400, `unknown field "${name}"; the fields are ${STYLIZE_VIDEO_FIELDS.join(', ')}`);
  }
  if (body.fields.has('content')) throw new HttpError(400, 'field "content" must be a file upload (the video), not a text value');
  if (!body.content) throw new HttpError(400, 'missing field "content": upload the video as a file');
  if (body.extraContent) throw new HttpError(400, 'give exactly one "content" video');
  const content = body.content;
  if (content.bytes === 0) throw new HttpError(400, `${label(content.filename)} is empty (0 bytes); upload an MP4, WebM, MOV, MKV or GIF video`);
  // the image API's checks, on a stand-in for the clip (it only looks at the content's presence)
  const shared = new Map([...body.fields].filter(([k]) => !(VIDEO_ONLY_FIELDS as readonly string[]).includes(k)));
  const standIn: UploadedFile = { field: 'content', filename: content.filename, mimeType: 'application/octet-stream', data: Buffer.alloc(0) };
  const base = parseStylizeRequest({ fields: shared, files: [standIn, ...body.files] } satisfies MultipartBody, defaultModel, defaultStyleSize);
  const formatName = (body.fields.get('format') ?? 'mp4').trim().toLowerCase();
  if (!(VIDEO_FORMATS as string[]).includes(formatName)) throw new HttpError(400, `field "format" must be ${VIDEO_FORMATS.join(', ')}, got ${JSON.stringify(body.fields.get('format'))}`);
  return {
    styles: base.styles, alpha: base.alpha, styleWeights: base.styleWeights, preserveColor: base.preserveColor, model: base.model, styleSize: base.styleSize,
    content,
    format: formatName as VideoOutputFormat,
    temporal: numberField(body.fields, 'temporal', 0, 1),
    temporalBlend: numberField(body.fields, 'temporal_blend', 0, 0.99),
    maxSize: numberField(body.fields, 'max_size', 16, 16384, true),
  };
}

// ---------- the clip ----------

function label(filename: string): string {
  return filename && filename !== 'content' ? `content (${filename})` : 'content';
}

function megapixels(n: number): string {
  return n >= 1e5 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} megapixels` : `${n} pixels`;
}

/** The opening bytes of the containers ffmpeg reads: a file that has one but fails to probe is damaged, not foreign. */
function looksLikeVideo(head: Buffer): boolean {
  const s = (a: number, b: number) => head.toString('latin1', a, b);
  return ['ftyp', 'moov', 'mdat', 'free', 'wide', 'skip'].includes(s(4, 8))
    || (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) // Matroska, WebM
    || (s(0, 4) === 'RIFF' && s(8, 11) === 'AVI')
    || ['OggS', 'GIF8'].includes(s(0, 4)) || s(0, 3) === 'FLV'
    || (head.length >= 4 && head.readUInt32BE(0) === 0x000001ba) // MPEG program stream
    || (head.length > 188 && head[0] === 0x47 && head[188] === 0x47) // MPEG transport stream
    || s(0, 4) === '\x30\x26\xb2\x75'; // ASF, WMV
}

/** The temporary names in a message from the video code, replaced by what the client knows them as. */
function clientMessage(message: string, content: ReceivedVideo, output?: string): string {
  let m = message.split(quoteName(content.path)).join(label(content.filename));
  if (output) m = m.split(quoteName(output)).join('the result');
  return m.split(path.dirname(content.path)).join('(temporary folder)');
}

function isMissingTool(message: string): boolean {
  return /^(ffmpeg|ffprobe) was not found/.test(message);
}

/** ffprobe's verdict, as the status a client can act on. */
async function probeUpload(content: ReceivedVideo, maxPixels: number): Promise<VideoInfo> {
  let info: VideoInfo;
  try {
    info = await probeVideo(content.path, { maxPixels: Infinity });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const m = clientMessage(err.message, content);
    if (isMissingTool(err.message)) throw new HttpError(503, `this server cannot stylise videos: ${m}`);
    if (/cannot be read by ffmpeg/.test(err.message)) {
      const head = Buffer.alloc(512);
      const fh = await fs.open(content.path, 'r');
      const { bytesRead } = await fh.read(head, 0, head.length, 0).finally(() => fh.close());
      if (!looksLikeVideo(head.subarray(0, bytesRead))) {
        throw new HttpError(415, `${label(content.filename)} is not a video this server can read; upload an MP4, WebM, MOV, MKV, AVI or GIF file`);
      }
      const why = /cannot be read by ffmpeg \((.*)\); it is/.exec(err.message)?.[1];
      throw new HttpError(422, `${label(content.filename)} is truncated or corrupt${why ? ` (ffmpeg: ${why})` : ''}; export it again or upload the whole file`);
    }
    if (/still image/.test(err.message)) throw new HttpError(415, `${label(content.filename)} is a still image, not a video; send images to POST /api/stylize`);
    if (/no video stream/.test(err.message)) throw new HttpError(415, m);
    throw new HttpError(422, m);
  }
  if (info.width * info.height > maxPixels) {
    throw new HttpError(413, `${label(content.filename)} has ${info.width}x${info.height} frames (${megapixels(info.width * info.height)}), more than this server's limit of ${megapixels(maxPixels)} per frame; shrink the video first`);
  }
  return info;
}

/** The frame and pixel budgets, from what the container says (the run checks the frame count again as it goes). */
function checkBudget(content: ReceivedVideo, info: VideoInfo, size: { width: number; height: number }, limits: VideoLimits): void {
  const name = label(content.filename);
  const about = info.framesFrom === 'count' ? '' : 'about ';
  if (info.frames > limits.maxFrames) {
    throw new HttpError(413, `${name} has ${about}${info.frames} frames (${info.duration.toFixed(1)} s at ${(info.fpsNum / info.fpsDen).toFixed(2)} fps), more than this server's limit of ${limits.maxFrames} frames; trim it first`);
  }
  const total = info.frames * size.width * size.height;
  if (total > limits.maxTotalPixels) {
    throw new HttpError(413, `${name} has ${about}${info.frames} frames of ${size.width}x${size.height}, ${megapixels(total)} in all, more than this server's limit of ${megapixels(limits.maxTotalPixels)}; send a shorter clip or a smaller max_size`);
  }
}

/** The abort reason when the client hangs up: there is no one left to answer. */
class ClientGoneError extends Error {
  constructor() {
    super('the client disconnected');
    this.name = 'ClientGoneError';
  }
}

// ---------- the route ----------

export class VideoApi {
  readonly jobs = new VideoJobs();
  /** Folders whose job still runs after its request was answered (time out): removed when it stops. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(private readonly o: VideoApiOptions) {}

  /** GET /api/video-jobs/<id>. */
  status(id: string): VideoJobStatus {
    const jobId = parseJobId(id)!;
    const s = this.jobs.get(jobId);
    if (!s) throw new HttpError(404, `no video job "${jobId}" on this server (ids are forgotten 5 minutes after the job ends); pass ?job=${jobId} on POST /api/stylize-video to track it`);
    return s;
  }

  async config() {
    const l = this.o.limits;
    return {
      ...(await videoSupport()),
      maxUploadBytes: l.maxVideoBytes, maxFrames: l.maxFrames, maxTotalPixels: l.maxTotalPixels, maxPixels: l.maxPixels, timeoutS: l.timeoutMs / 1000,
    };
  }

  /** Resolves once every temporary folder is gone. */
  async idle(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
  }

  /** POST /api/stylize-video. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const { limits, queue } = this.o;
    let phase: 'upload' | 'work' = 'upload';
    const cancel = new AbortController();
    const timer = setTimeout(() => cancel.abort(phase === 'upload'
      ? new HttpError(408, `the request body did not arrive within the ${limits.timeoutMs / 1000} s limit; send it faster (or raise adain serve --video-timeout)`, { Connection: 'close' })
      : new HttpError(503, `the video took longer than the ${limits.timeoutMs / 1000} s limit (upload, queue and stylisation together); send a shorter clip, a smaller max_size, or try again later`,
        { 'Retry-After': String(queue.retryAfterSeconds()) })), limits.timeoutMs);
    const onClose = () => { if (!res.writableFinished) cancel.abort(new ClientGoneError()); };
    res.on('close', onClose);
    // answers at once when cancelled; the job itself stops at its next frame or tile
    const cancelled = new Promise<never>((_, reject) => cancel.signal.addEventListener('abort', () => reject(cancel.signal.reason), { once: true }));
    cancelled.catch(() => {});
    let dir: string | undefined;
    let job: Promise<VideoResult> | undefined;
    let record: JobRecord | undefined;
    try {
      const jobId = parseJobId(new URL(req.url ?? '/', 'http://localhost').searchParams.get('job'));
      if (jobId) record = this.jobs.start(jobId);
      // before the upload: a server without ffmpeg should not take in a clip it cannot use
      await requireEncoders();
      dir = await fs.mkdtemp(path.join(this.o.tempDir, 'adain-video-'));
      const upload = receiveUpload(req, dir, limits, (n) => { if (record) record.status.bytes_received += n; });
      upload.catch(() => {}); // when the deadline wins, the parse's own failure is not wanted
      const body = await Promise.race([upload, cancelled]);
      phase = 'work';
      const r = parseVideoRequest(body, this.o.defaultModel, this.o.styleSize);
      await requireEncoders(r.format);
      for (const [i, s] of r.styles.entries()) await probeImage(s, r.styles.length > 1 ? `style ${i + 1}` : 'style', limits.maxPixels);
      const info = await probeUpload(r.content, limits.maxPixels);
      const size = outputSize(info, videoFormatFromPath(`out.${r.format}`), r.maxSize);
      checkBudget(r.content, info, size, limits);
      if (record) Object.assign(record.status, { state: 'queued', frames_total: info.frames, width: size.width, height: size.height });

      const output = path.join(dir, `stylized.${r.format}`);
      job = queue.run(() => this.run(r, output, info, cancel, record), cancel.signal);
      job.catch(() => {});
      const result = await Promise.race([job, cancelled]);
      const { size: bytes } = await fs.stat(output);
      res.writeHead(200, {
        'Content-Type': VIDEO_CONTENT_TYPES[r.format],
        'Content-Length': bytes,
        'Content-Disposition': `inline; filename="stylized.${r.format}"`,
        'Cache-Control': 'no-store',
        'X-Video-Size': `${result.width}x${result.height}`,
        'X-Video-Frames': String(result.frames),
        'X-Model': r.model,
        'Server-Timing': `total;dur=${(performance.now() - started).toFixed(1)}`,
      });
      await pipeline(createReadStream(output), res).catch(() => {}); // a client leaving now only loses its own answer
      if (record) {
        Object.assign(record.status, { frames_done: result.frames, frames_total: result.frames });
        this.jobs.finish(record, 'done');
      }
    } catch (err) {
      let failure = err;
      if (cancel.signal.aborted) {
        failure = cancel.signal.reason;
        if (phase === 'work') this.o.onCancelled();
      } else if (err instanceof QueueFullError) {
        failure = new HttpError(503, err.message + '; retry later', { 'Retry-After': String(err.retryAfterS) });
      }
      if (record) {
        const gone = failure instanceof ClientGoneError;
        this.jobs.finish(record, gone ? 'cancelled' : 'failed', gone ? 'the client disconnected' : failure instanceof Error ? failure.message : String(failure));
      }
      if (failure instanceof ClientGoneError) {
        this.o.log(`${req.method} ${req.url} cancelled after ${(performance.now() - started).toFixed(0)} ms: the client disconnected during the ${phase}`);
        return;
      }
      throw failure;
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      if (dir) this.removeLater(dir, job);
    }
  }

  /** The queued part: model, styles, frames. */
  private async run(r: StylizeVideoRequest & { content: ReceivedVideo }, output: string, info: VideoInfo, cancel: AbortController, record?: JobRecord): Promise<VideoResult> {
    const { signal } = cancel;
    signal.throwIfAborted();
    if (record) record.status.state = 'running';
    const model = await this.o.model(r.model);
    const styles = await this.styles(model, r, signal);
    const maxFrames = this.o.limits.maxFrames;
    try {
      return await model.stylizeVideo(r.content.path, styles, {
        output, alpha: r.alpha, styleWeights: r.styleWeights, preserveColor: r.preserveColor, styleSize: r.styleSize,
        maxSize: r.maxSize, maxPixels: this.o.limits.maxPixels, temporal: r.temporal, temporalBlend: r.temporalBlend,
        memoryBudget: this.o.memoryBudget, signal,
        onProgress: (p) => {
          if (record) Object.assign(record.status, { frames_done: p.done, frames_total: p.total, fps: p.elapsed > 0 ? Math.round((p.done / p.elapsed) * 100) / 100 : 0 });
          // the container's count may be an estimate, or a lie: the budget holds for the real one
          if (p.done > maxFrames) cancel.abort(new HttpError(413, `${label(r.content.filename)} has more than ${maxFrames} frames (its header said ${info.frames}), more than this server's limit; trim it first`));
        },
      });
    } catch (err) {
      if (signal.aborted || !(err instanceof UserError)) throw err;
      const m = clientMessage(err.message, r.content, output);
      if (isMissingTool(err.message)) throw new HttpError(503, `this server cannot stylise videos: ${m}`);
      // the encoder's failures are this server's (disk, ffmpeg build); the rest are the clip's
      if (/^cannot write/.test(err.message)) throw new Error(m);
      throw new HttpError(422, m);
    }
  }

  /** The styles as statistics (kept across requests, as the image API does) or, to be recoloured per clip, as images. */
  private async styles(model: StyleModel, r: StylizeVideoRequest, signal: AbortSignal): Promise<(RgbImage | ChannelStats)[]> {
    const out: (RgbImage | ChannelStats)[] = [];
    const cache = this.o.statsCache;
    for (const [i, s] of r.styles.entries()) {
      signal.throwIfAborted();
      const role = r.styles.length > 1 ? `style ${i + 1}` : 'style';
      if (r.preserveColor || !cache) {
        out.push(await decodeUpload(s, role, this.o.limits.maxPixels));
        continue;
      }
      const key = StyleStatsCache.key(r.model, r.styleSize, s.data);
      let stats = cache.get(key);
      if (!stats) {
        stats = await model.styleStats(await decodeUpload(s, role, this.o.limits.maxPixels), { styleSize: r.styleSize });
        cache.set(key, stats);
      }
      out.push(stats);
    }
    return out;
  }

  /** Removes a request's folder once its job (if any) has stopped writing into it. */
  private removeLater(dir: string, job?: Promise<unknown>): void {
    const p = (async () => {
      await job?.catch(() => {});
      await fs.rm(dir, { recursive: true, force: true }).catch((err: unknown) => this.o.log(`could not remove ${dir}: ${String(err)}`));
    })();
    this.cleanups.add(p);
    void p.finally(() => this.cleanups.delete(p));
  }
}
