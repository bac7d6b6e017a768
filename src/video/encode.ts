/** Writes raw RGB frames to a video file through an ffmpeg child process. */
import type { ChildProcess } from 'node:child_process';
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';
import { exited, firstError, killTool, spawnTool, tail } from './ffmpeg.js';
import type { OutputFormat } from './formats.js';
import { WriteBehind } from './write-behind.js';

/**
 * Frames handed to ffmpeg's pipe ahead of its reading them: while ffmpeg is busy encoding,
 * the network goes on with the next frame instead of waiting for the pipe; two frames are
 * enough for that (ffmpeg reads a frame far faster than the network makes one).
 */
export const WRITE_BEHIND = 2;

export interface EncodeOptions {
  width: number;
  height: number;
  fpsNum: number;
  fpsDen: number;
  format: OutputFormat;
  /** Copy (or, where the container cannot hold it, re-encode) the first audio stream of this file. */
  audioFrom?: { file: string; codec: string };
  /** H.264 outputs: x264's speed/size trade (default DEFAULT_X264_PRESET). */
  x264Preset?: X264Preset;
  /** ffmpeg threads for the video encoder (0 = its choice). */
  threads?: number;
  /** Frames queued ahead of ffmpeg's reading (default WRITE_BEHIND). */
  writeBehind?: number;
  /** The file name users know, for messages (the bytes go to a temporary file). */
  label: string;
}

/** x264's presets, fastest first: each step down spends more CPU for a smaller file at the same quality. */
export const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'] as const;
export type X264Preset = (typeof X264_PRESETS)[number];

/**
 * veryfast: on 2 cores the encoder runs beside the network, and medium's CPU (2.6x veryfast's
 * per frame, docs/VIDEO.md) comes out of the frame rate; crf 16 instead of 18 buys back
 * medium's quality at a slightly larger file.
 */
export const DEFAULT_X264_PRESET: X264Preset = 'veryfast';
const X264_CRF = '16';

export type AudioHandling = 'copied' | 'encoded' | 'none';

/** How the audio of `codec` goes into `format`: copied as it is where the container allows it. */
export function audioHandling(format: OutputFormat, codec: string | undefined): AudioHandling {
  if (!codec || (format.audioCopy !== null && format.audioCopy.length === 0)) return 'none';
  if (format.audioCopy === null || format.audioCopy.includes(codec)) return 'copied';
  return format.audioEncoder ? 'encoded' : 'none';
}

function videoArgs(o: EncodeOptions): string[] {
  const threads = ['-threads', String(o.threads ?? 0)];
  switch (o.format.videoCodec) {
    case 'libx264':
      // a low crf: stylised frames are all fine texture, which lower rates smear into blocks
      return ['-map', '0:v:0', '-c:v', 'libx264', '-preset', o.x264Preset ?? DEFAULT_X264_PRESET, '-crf', X264_CRF, '-pix_fmt', 'yuv420p', ...threads,
        ...(o.format.muxer === 'mp4' || o.format.muxer === 'mov' ? ['-movflags', '+faststart'] : [])];
    case 'libvpx-vp9':
      return ['-map', '0:v:0', '-c:v', 'libvpx-vp9', '-crf', '30', '-b:v', '0', '-pix_fmt', 'yuv420p', '-deadline', 'good', '-cpu-used', '4', '-row-mt', '1', ...threads];
    case 'gif':
      // one palette for the whole clip (palettegen sees every frame first), dithered: the
      // default 256-colour web palette bands painted gradients badly
      return ['-filter_complex', '[0:v]split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer:bayer_scale=3[v]', '-map', '[v]', '-c:v', 'gif'];
  }
}

export function encodeArgs(o: EncodeOptions, outFile: string): string[] {
  const audio = audioHandling(o.format, o.audioFrom?.codec);
  return [
    '-nostdin', '-hide_banner', '-v', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${o.width}x${o.height}`, '-framerate', `${o.fpsNum}/${o.fpsDen}`, '-i', 'pipe:0',
    ...(audio !== 'none' && o.audioFrom ? ['-i', o.audioFrom.file] : []),
    ...videoArgs(o),
    ...(audio === 'copied' ? ['-map', '1:a:0', '-c:a', 'copy'] : []),
    ...(audio === 'encoded' ? ['-map', '1:a:0', '-c:a', o.format.audioEncoder!, '-b:a', '160k'] : []),
    '-f', o.format.muxer, outFile,
  ];
}

/** One ffmpeg encoder: write() frames in order (waiting only while WRITE_BEHIND frames are still unread), then finish(). */
export class FrameEncoder {
  private readonly child: ChildProcess;
  private readonly queue: WriteBehind;
  private readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly stderr: () => string;
  private failure: Error | undefined;
  readonly audio: AudioHandling;

  constructor(private readonly opts: EncodeOptions, outFile: string) {
    this.audio = audioHandling(opts.format, opts.audioFrom?.codec);
    this.child = spawnTool('ffmpeg', encodeArgs(opts, outFile), { stdio: ['pipe', 'ignore', 'pipe'] });
    this.done = exited(this.child, 'ffmpeg');
    this.done.catch((err: unknown) => (this.failure ??= err instanceof Error ? err : new Error(String(err))));
    this.stderr = tail(this.child.stderr);
    // EPIPE when ffmpeg has exited: its exit status and message say why, in finish()/write()
    this.child.stdin?.on('error', (err) => (this.failure ??= err));
    this.queue = new WriteBehind(this.child.stdin!, opts.writeBehind ?? WRITE_BEHIND);
  }

  private async failed(): Promise<Error> {
    const r = await this.done.catch((err: unknown) => err);
    if (r instanceof UserError) return r;
    return new UserError(`cannot write ${quoteName(this.opts.label)}: ffmpeg failed (${firstError(this.stderr())}); check the disk space and the output name`);
  }

  /** Queues one frame (width*height*3 bytes, not to be changed afterwards: it is written later). */
  async write(frame: Uint8Array): Promise<void> {
    if (this.failure || this.child.stdin!.destroyed) throw await this.failed();
    try {
      await this.queue.write(frame);
    } catch {
      throw await this.failed();
    }
    if (this.failure) throw await this.failed();
  }

  /** Closes the input and waits for ffmpeg to finish the file. */
  async finish(): Promise<void> {
    this.child.stdin?.end();
    const r = await this.done.catch(() => undefined);
    if (!r || r.code !== 0) throw await this.failed();
  }

  /** Stops ffmpeg at once (its partial file is the caller's to remove). */
  async abort(): Promise<void> {
    killTool(this.child);
    await this.done.catch(() => {});
  }
}
