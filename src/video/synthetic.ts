/**
 * Clips with a known motion, made from a still photo: a slow pan and zoom rendered in JS
 * (bilinear, sub-pixel steps, so the motion is smooth) and encoded with ffmpeg. They are what
 * the flicker measure and the tests run on: the only change between frames is the motion.
 */
import { exited, firstError, spawnTool, tail } from './ffmpeg.js';

/** Interleaved RGB bytes. */
export interface RgbBytes {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Motion {
  frames: number;
  width: number;
  height: number;
  /** How far the view moves right over the clip, as a fraction of the photo's width. */
  pan: number;
  /** The view's magnification at the last frame relative to the first (1 = none). */
  zoom: number;
  /** The first view's width as a fraction of the photo's (default 0.7). */
  view?: number;
}

/** The frames of a pan-and-zoom over `photo`, each width*height*3 bytes. */
export function renderMotion(photo: RgbBytes, m: Motion): Buffer[] {
  const frames: Buffer[] = [];
  const aspect = m.height / m.width;
  const view0 = Math.min((m.view ?? 0.7) * photo.width, photo.height / aspect);
  for (let t = 0; t < m.frames; t++) {
    const u = m.frames > 1 ? t / (m.frames - 1) : 0;
    const vw = view0 / (1 + (m.zoom - 1) * u), vh = vw * aspect;
    // the pan runs across the free space left and right of the first view, centred
    const free = photo.width - view0;
    const cx = photo.width / 2 + (u - 0.5) * Math.min(m.pan * photo.width, free);
    const x0 = cx - vw / 2, y0 = photo.height / 2 - vh / 2;
    const sx = vw / m.width, sy = vh / m.height;
    const out = Buffer.alloc(m.width * m.height * 3);
    for (let y = 0; y < m.height; y++) {
      const fy = Math.min(Math.max(y0 + (y + 0.5) * sy - 0.5, 0), photo.height - 1);
      const iy = Math.min(Math.floor(fy), photo.height - 2), wy = fy - iy;
      for (let x = 0; x < m.width; x++) {
        const fx = Math.min(Math.max(x0 + (x + 0.5) * sx - 0.5, 0), photo.width - 1);
        const ix = Math.min(Math.floor(fx), photo.width - 2), wx = fx - ix;
        const a = (iy * photo.width + ix) * 3, b = a + photo.width * 3;
        for (let c = 0; c < 3; c++) {
          const top = photo.data[a + c] * (1 - wx) + photo.data[a + 3 + c] * wx;
          const bottom = photo.data[b + c] * (1 - wx) + photo.data[b + 3 + c] * wx;
          out[(y * m.width + x) * 3 + c] = Math.round(top * (1 - wy) + bottom * wy);
        }
      }
    }
    frames.push(out);
  }
  return frames;
}

/** Encodes RGB frames to `file` (H.264 at a high quality, so the codec adds little change of its own). */
export async function writeClip(frames: readonly Uint8Array[], width: number, height: number, fps: number, file: string, extraArgs: readonly string[] = []): Promise<void> {
  const child = spawnTool('ffmpeg', [
    '-nostdin', '-hide_banner', '-v', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0',
    ...(extraArgs.length ? extraArgs : ['-c:v', 'libx264', '-crf', '10', '-preset', 'fast', '-pix_fmt', 'yuv420p']),
    file,
  ], { stdio: ['pipe', 'ignore', 'pipe'] });
  const done = exited(child, 'ffmpeg');
  const stderr = tail(child.stderr);
  child.stdin!.on('error', () => {});
  for (const f of frames) {
    if (!child.stdin!.write(f)) await new Promise((resolve) => child.stdin!.once('drain', resolve));
  }
  child.stdin!.end();
  const { code } = await done;
  if (code !== 0) throw new Error(`ffmpeg could not write ${file}: ${firstError(stderr())}`);
}
