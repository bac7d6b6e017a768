/** Frames of a video as raw interleaved RGB bytes, decoded by an ffmpeg child process. */
import { UserError } from '../errors.js';
import { quoteName } from '../image/io.js';
import { exited, firstError, killTool, spawnTool, tail } from './ffmpeg.js';
import type { VideoInfo } from './probe.js';

export interface DecodeOptions {
  /** Output frame size; when it differs from the video's, ffmpeg scales (or crops one odd row/column). */
  width: number;
  height: number;
  signal?: AbortSignal;
  /** ffmpeg's decoding threads (default: its choice). */
  threads?: number;
}

/** The ffmpeg arguments of a decode: constant frame rate, so that frame count x rate = duration. */
export function decodeArgs(file: string, info: VideoInfo, opts: Pick<DecodeOptions, 'width' | 'height' | 'threads'>): string[] {
  const { width, height } = opts;
  const filters: string[] = [];
  const cropOnly = width <= info.width && height <= info.height && info.width - width <= 1 && info.height - height <= 1;
  if (width !== info.width || height !== info.height) {
    // dropping one odd row or column (H.264 needs even sides) keeps the pixels sharp; any
    // larger change is a real resize, averaged over the source pixels when shrinking
    filters.push(cropOnly ? `crop=${width}:${height}:0:0` : `scale=${width}:${height}:flags=area`);
  }
  return [
    '-nostdin', '-hide_banner', '-v', 'error',
    // stop at the first damaged packet: a corrupt video is reported, never half stylised
    '-xerror',
    ...(opts.threads ? ['-threads', String(opts.threads)] : []),
    '-i', file,
    '-map', '0:v:0', '-an', '-sn', '-dn',
    ...(filters.length ? ['-vf', filters.join(',')] : []),
    '-fps_mode', 'cfr', '-r', `${info.fpsNum}/${info.fpsDen}`,
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ];
}

/**
 * Yields each frame as width*height*3 bytes (RGB, row by row). Reading is pulled: while the
 * consumer is busy, the pipe fills and ffmpeg waits, so memory stays bounded whatever the
 * video's length. Returning early stops ffmpeg.
 */
export async function* decodeFrames(file: string, info: VideoInfo, opts: DecodeOptions): AsyncGenerator<Buffer> {
  const frameBytes = opts.width * opts.height * 3;
  const child = spawnTool('ffmpeg', decodeArgs(file, info, opts));
  const done = exited(child, 'ffmpeg');
  // a failed spawn rejects `done`; keep it from being unhandled until it is awaited below
  done.catch(() => {});
  const stderr = tail(child.stderr);
  const onAbort = () => killTool(child);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let frame = Buffer.allocUnsafe(frameBytes);
  let filled = 0;
  let count = 0;
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(frameBytes - filled, chunk.length - off);
        chunk.copy(frame, filled, off, off + n);
        filled += n; off += n;
        if (filled === frameBytes) {
          count++;
          yield frame;
          frame = Buffer.allocUnsafe(frameBytes);
          filled = 0;
        }
      }
    }
    const { code, signal } = await done;
    opts.signal?.throwIfAborted();
    // before the exit code: ffmpeg also fails on a stream with no frames, and "no frames" says more
    if (count === 0) throw new UserError(`video ${quoteName(file)} has no frames that can be decoded; re-export or re-download it`);
    if (code !== 0) {
      throw new UserError(`video ${quoteName(file)} is truncated or corrupt (ffmpeg: ${firstError(stderr())}${signal ? `, ${signal}` : ''}); re-export or re-download it`);
    }
    // a file cut short whose index survived (e.g. moov first) decodes cleanly but ends early
    const slack = info.framesFrom === 'count' ? Math.max(2, Math.ceil(0.02 * info.frames)) : info.framesFrom === 'video-duration' ? Math.max(3, Math.ceil(0.05 * info.frames)) : Infinity;
    if (count < info.frames - slack) {
      throw new UserError(`video ${quoteName(file)} is truncated: ${count} of its ${info.framesFrom === 'count' ? '' : 'about '}${info.frames} frames could be decoded; re-export or re-download it`);
    }
    finished = true;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (!finished) {
      killTool(child);
      await done.catch(() => {});
    }
  }
}
