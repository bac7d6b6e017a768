/**
 * A video, stylised frame by frame as it streams: ffmpeg decodes ahead of the network and
 * encodes behind it, each in its own process, with only a few frames in memory at a time.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { preserveColor as recolour } from '../image/color.js';
import { quoteName, toInterleavedU8, type RgbImage } from '../image/io.js';
import type { ChannelStats } from '../stylize/features.js';
import { checkAlpha, normaliseWeights, styleStats, stylizeImage, type StylizeOptions } from '../stylize/model.js';
import type { Network } from '../stylize/network.js';
import { decodeFrames } from './decode.js';
import { FrameEncoder, audioHandling, type AudioHandling, type X264Preset } from './encode.js';
import { availableEncoders } from './ffmpeg.js';
import { videoFormatFromPath, type OutputFormat } from './formats.js';
import { probeVideo, type VideoInfo } from './probe.js';
import { readAhead } from './read-ahead.js';
import { DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND, OutputBlend, TemporalStats, planarWithChange } from './temporal.js';

export interface VideoProgress {
  /** Frames written so far. */
  done: number;
  /** Frames expected (exact when the container says, else from duration x frame rate). */
  total: number;
  /** Seconds since the first frame was decoded. */
  elapsed: number;
}

export interface StylizeVideoOptions extends Pick<StylizeOptions, 'alpha' | 'styleWeights' | 'memoryBudget' | 'signal'> {
  /** The output file; its extension picks the format (.mp4/.m4v/.mov/.mkv: H.264, .webm: VP9, .gif). */
  output: string;
  /** Colours of the content kept: the style is recoloured once per clip, to the first frame. */
  preserveColor?: boolean;
  /** Scale frames so that their longer side is at most this. */
  maxSize?: number;
  /** Refuse frames with more pixels than this (default 100 million), before decoding. */
  maxPixels?: number;
  /** Smoothing of the content statistics across frames in [0, 1]; 0 = frame by frame, the default (see temporal.ts). */
  temporal?: number;
  /** Blending of each output with the previous one where the input did not change, in [0, 1); 0 = off, default 0.8 (see OutputBlend). */
  temporalBlend?: number;
  /** Threads of each ffmpeg (decoder and encoder; default: their choice). */
  ffmpegThreads?: number;
  /** H.264 outputs: x264's preset (default veryfast, see encode.ts). */
  x264Preset?: X264Preset;
  /** Called after each frame is handed to the encoder. */
  onProgress?: (p: VideoProgress) => void;
  /** Sees each decoded frame and its stylised version before encoding (measures such as flicker use it); awaited. */
  onFrame?: (frame: VideoFrame) => void | Promise<void>;
}

export interface VideoFrame {
  index: number;
  /** The decoded frame, as fed to the network. */
  input: RgbImage;
  /** The stylised frame, before clamping and encoding. */
  output: RgbImage;
}

export interface VideoResult {
  output: string;
  frames: number;
  width: number;
  height: number;
  fpsNum: number;
  fpsDen: number;
  /** Audio of the input: copied as it was, re-encoded for the container, or none. */
  audio: AudioHandling;
  /** Frames at which the temporal smoothing restarted on a scene change (0 is the first frame). */
  cuts: number[];
  seconds: number;
}

/** Frames decoded ahead of the network: enough to hide decoding, few enough to bound memory. */
const READ_AHEAD = 3;

/** The frame size of the output: the longer side at most maxSize, even sides where the codec needs them. */
export function outputSize(info: Pick<VideoInfo, 'width' | 'height'>, format: Pick<OutputFormat, 'evenSize'>, maxSize?: number): { width: number; height: number } {
  let { width, height } = info;
  if (maxSize !== undefined) {
    if (!(maxSize >= 2)) throw new UserError(`--max-size must be at least 2 for a video, got ${maxSize}`);
    const scale = Math.min(1, Math.floor(maxSize) / Math.max(width, height));
    width = Math.max(1, Math.round(width * scale));
    height = Math.max(1, Math.round(height * scale));
  }
  if (format.evenSize) {
    width = Math.max(2, width - (width % 2));
    height = Math.max(2, height - (height % 2));
  }
  return { width, height };
}

/** The temporary file a video is written to before it is renamed into place. */
export function temporaryPath(output: string): string {
  return path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** The checks that need no decoding: the output's format and this ffmpeg's encoders for it. */
export async function checkVideoOutput(output: string): Promise<OutputFormat> {
  const format = videoFormatFromPath(output);
  const encoders = await availableEncoders();
  if (!encoders.has(format.videoCodec)) {
    throw new UserError(`cannot write ${quoteName(output)}: this ffmpeg has no ${format.videoCodec} encoder; install a full ffmpeg build or choose another extension`);
  }
  return format;
}

/**
 * Stylises `input` into `opts.output`. Style statistics are computed once per clip (on the
 * first frame's colours with preserveColor). The result appears only when complete: the
 * bytes go to a temporary file beside it, removed on any error or abort.
 */
export async function stylizeVideoFile(net: Network, input: string, styles: readonly (RgbImage | ChannelStats)[], opts: StylizeVideoOptions): Promise<VideoResult> {
  const started = performance.now();
  const { signal, output } = opts;
  const alpha = checkAlpha(opts.alpha ?? 1);
  if (styles.length === 0) throw new UserError('no style image given; pass --style FILE');
  const weights = normaliseWeights(styles.length, opts.styleWeights);
  const temporal = opts.temporal ?? DEFAULT_TEMPORAL;
  if (!(temporal >= 0 && temporal <= 1)) throw new UserError(`--temporal must be between 0 and 1, got ${temporal}`);
  const blendStrength = opts.temporalBlend ?? DEFAULT_TEMPORAL_BLEND;
  if (!(blendStrength >= 0 && blendStrength < 1)) throw new UserError(`--temporal-blend must be at least 0 and below 1, got ${blendStrength}`);
  if (opts.preserveColor && styles.some((s) => 'mean' in s)) throw new RangeError('preserveColor needs the style images, not their statistics');
  // ffprobe and ffmpeg's encoder list are two process starts (~50 ms each): side by side; a bad
  // output is still reported before a bad input
  const probing = probeVideo(input, { maxPixels: opts.maxPixels });
  probing.catch(() => {});
  const format = await checkVideoOutput(output);
  const info = await probing;
  const { width, height } = outputSize(info, format, opts.maxSize);
  const audioFrom = info.audioCodec ? { file: input, codec: info.audioCodec } : undefined;
  if (audioHandling(format, info.audioCodec) === 'encoded' && !(await availableEncoders()).has(format.audioEncoder!)) {
    throw new UserError(`cannot write ${quoteName(output)}: its audio (${info.audioCodec}) must be re-encoded for ${format.container} and this ffmpeg has no ${format.audioEncoder} encoder; choose .mkv`);
  }
  signal?.throwIfAborted();

  const tmp = temporaryPath(output);
  const encoder = new FrameEncoder({ width, height, fpsNum: info.fpsNum, fpsDen: info.fpsDen, format, audioFrom, threads: opts.ffmpegThreads, x264Preset: opts.x264Preset, label: output }, tmp);
  // the cut detector lives in TemporalStats; with strength 0 it only watches for cuts
  const smoother = temporal > 0 || blendStrength > 0 ? new TemporalStats({ strength: temporal }) : undefined;
  const blend = blendStrength > 0 ? new OutputBlend(blendStrength) : undefined;
  let frames = 0;
  let decodeStart: number | undefined;
  let complete = false;
  try {
    let stats: ChannelStats[] | undefined;
    let previous: Buffer | undefined;
    // each pixel's change from the previous frame: measured once, for the cut detector and the blend
    const changes = smoother ? new Uint16Array(width * height) : undefined;
    for await (const bytes of readAhead(decodeFrames(input, info, { width, height, signal, threads: opts.ffmpegThreads }), READ_AHEAD)) {
      decodeStart ??= performance.now();
      // the frame as the network's floats, and each pixel's change from the previous frame, in one pass
      const { image: frame, change } = planarWithChange(bytes, width, height, changes && previous, changes);
      if (!stats) {
        stats = [];
        for (const s of styles) stats.push('mean' in s ? s : await styleStats(net, opts.preserveColor ? recolour(s, frame) : s));
      }
      const changed = previous !== undefined;
      previous = bytes;
      const out = await stylizeImage(net, frame, stats, {
        alpha, styleWeights: weights, memoryBudget: opts.memoryBudget, signal,
        contentStats: smoother ? (measured) => smoother.next(measured, change) : undefined,
      });
      const rgb = blend
        ? blend.applyToBytes(out.data, bytes, smoother?.cuts.at(-1) === frames, changed ? changes : undefined, opts.onFrame !== undefined)
        : toInterleavedU8(out);
      await opts.onFrame?.({ index: frames, input: frame, output: out });
      await encoder.write(rgb);
      frames++;
      opts.onProgress?.({ done: frames, total: Math.max(info.frames, frames), elapsed: (performance.now() - decodeStart) / 1000 });
    }
    signal?.throwIfAborted();
    await encoder.finish();
    signal?.throwIfAborted();
    try {
      await fs.rename(tmp, output);
    } catch (err) {
      throw new UserError(`cannot write ${quoteName(output)} (${(err as NodeJS.ErrnoException).code ?? String(err)}); choose another output path`);
    }
    complete = true;
  } finally {
    if (!complete) {
      await encoder.abort();
      await fs.rm(tmp, { force: true });
    }
  }
  return {
    output, frames, width, height, fpsNum: info.fpsNum, fpsDen: info.fpsDen, audio: encoder.audio,
    cuts: smoother?.cuts ?? [], seconds: (performance.now() - started) / 1000,
  };
}
