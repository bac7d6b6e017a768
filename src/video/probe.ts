/** What a video file holds, from ffprobe, checked before anything is decoded. */
import { promises as fs } from 'node:fs';
import { UserError } from '../errors.js';
import { DEFAULT_MAX_PIXELS, quoteName } from '../image/io.js';
import { firstError, runTool } from './ffmpeg.js';

export interface VideoInfo {
  /** Frame size as decoded (after the rotation the container asks for). */
  width: number;
  height: number;
  /** Frames per second as a fraction, for ffmpeg's -r (30000/1001 must stay exact). */
  fpsNum: number;
  fpsDen: number;
  /** Duration in seconds (0 when the container does not say). */
  duration: number;
  /** The number of frames: exact when the container says so, else estimated from duration x fps. */
  frames: number;
  /**
   * Where `frames` comes from: counted by the container, or estimated from the video stream's
   * duration, or from the whole file's (which may be the audio's, so only a rough guide).
   */
  framesFrom: 'count' | 'video-duration' | 'file-duration';
  /** The first audio stream's codec, if any. */
  audioCodec?: string;
}

export function fps(info: Pick<VideoInfo, 'fpsNum' | 'fpsDen'>): number {
  return info.fpsNum / info.fpsDen;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  side_data_list?: { rotation?: number }[];
  tags?: { rotate?: string; DURATION?: string };
  disposition?: { attached_pic?: number };
}

interface ProbeResult {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string };
}

/** ffmpeg's demuxers for single pictures: such a file is an image, whatever its name says. */
const IMAGE_DEMUXERS = /(^|,)(image2|[a-z0-9]+_pipe|webp_pipe|png_pipe|jpeg_pipe)(,|$)/;
const IMAGE_CODECS = new Set(['mjpeg', 'png', 'webp', 'bmp', 'tiff', 'jpeg2000']);

function rate(s: string | undefined): [number, number] | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(s ?? '');
  if (!m) return undefined;
  const n = Number(m[1]), d = Number(m[2]);
  return n > 0 && d > 0 ? [n, d] : undefined;
}

function positive(s: string | undefined): number | undefined {
  const n = Number(s);
  return s !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

function pixelCount(n: number): string {
  return n >= 1e5 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}

export interface ProbeOptions {
  /** Refuse frames with more pixels than this (default 100 million), before decoding. */
  maxPixels?: number;
}

/** Probes a video; every problem with the file is a UserError naming it and saying what to do. */
export async function probeVideo(file: string, opts: ProbeOptions = {}): Promise<VideoInfo> {
  const name = quoteName(file);
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`video ${name} cannot be read: permission denied; check its permissions (chmod +r)`);
    throw new UserError(`video ${name} does not exist; check the path`);
  }
  if (st.isDirectory()) throw new UserError(`video ${name} is a folder, not a file; give the path of a video file`);
  if (st.size === 0) throw new UserError(`video ${name} is an empty file (0 bytes); re-export or re-download it`);
  try {
    await (await fs.open(file, 'r')).close();
  } catch {
    throw new UserError(`video ${name} cannot be read: permission denied; check its permissions (chmod +r)`);
  }

  const r = await runTool('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '--', file]);
  if (r.code !== 0) throw new UserError(`video ${name} cannot be read by ffmpeg (${firstError(r.stderr)}); it is truncated, corrupt or not a video`);
  let probe: ProbeResult;
  try {
    probe = JSON.parse(r.stdout) as ProbeResult;
  } catch {
    throw new Error(`ffprobe printed no JSON for ${file}: ${r.stdout.slice(0, 200)}`);
  }
  const streams = probe.streams ?? [];
  // cover art in audio files is a video stream of one still picture: not a video
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video) {
    const audio = streams.some((s) => s.codec_type === 'audio');
    throw new UserError(`${name} has no video stream${audio ? ' (only audio)' : ''}; give a video file (mp4, mov, webm, mkv, gif, ...)`);
  }
  const demuxer = probe.format?.format_name ?? '';
  if (IMAGE_DEMUXERS.test(demuxer) || (IMAGE_CODECS.has(video.codec_name ?? '') && !positive(video.nb_frames) && !positive(probe.format?.duration))) {
    throw new UserError(`${name} is a still image (${video.codec_name ?? demuxer}), not a video; name it by its real type (e.g. .jpg) to stylise it as an image`);
  }
  let width = video.width ?? 0, height = video.height ?? 0;
  if (!(width > 0 && height > 0)) throw new UserError(`video ${name} has no frame size (its video stream is damaged); re-export or re-download it`);
  // ffmpeg turns frames upright when it decodes them: the size we get is the rotated one
  const rotation = Number(video.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0);
  if (Math.abs(rotation) % 180 === 90) [width, height] = [height, width];
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (width * height > maxPixels) {
    throw new UserError(`video ${name} has ${width}x${height} frames (${pixelCount(width * height)}), more than the limit of ${pixelCount(maxPixels)}; raise --max-pixels (and use --max-size)`);
  }

  // avg_frame_rate is the true rate of variable-rate files (GIF's r_frame_rate is a guess)
  const [fpsNum, fpsDen] = rate(video.avg_frame_rate) ?? rate(video.r_frame_rate) ?? [25, 1];
  // Matroska keeps the stream's duration in a tag, as hh:mm:ss.fraction
  const tag = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(video.tags?.DURATION ?? '');
  const videoDuration = positive(video.duration) ?? (tag ? positive(String(Number(tag[1]) * 3600 + Number(tag[2]) * 60 + Number(tag[3]))) : undefined);
  const duration = videoDuration ?? positive(probe.format?.duration) ?? 0;
  const counted = positive(video.nb_frames);
  const frames = counted ?? Math.round((duration * fpsNum) / fpsDen);
  const framesFrom = counted !== undefined ? 'count' : videoDuration !== undefined ? 'video-duration' : 'file-duration';
  if (counted === undefined && duration === 0 && video.nb_frames === '0') throw new UserError(`video ${name} has no frames; re-export or re-download it`);
  const audio = streams.find((s) => s.codec_type === 'audio');
  return { width, height, fpsNum, fpsDen, duration, frames, framesFrom, audioCodec: audio?.codec_name };
}
