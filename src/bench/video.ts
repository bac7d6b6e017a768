/**
 * `adain bench video`: frames per second of the whole video pipeline (ffmpeg decode, stylise,
 * ffmpeg encode, overlapped) against the stylisation alone on the same frames in memory,
 * which says how much of the time decoding and encoding take that overlap does not hide.
 * The pipeline runs twice: as users get it (the default temporal blend and its cut
 * detector) and frame by frame (--temporal-blend 0), which tells the blend's share from
 * ffmpeg's. Both count everything from the call to the renamed file: probing, starting
 * ffmpeg, and the encoder's flush at the end (x264 holds back ~40 frames for its lookahead,
 * so over a short clip most of the encoding happens there); `steadyFps` leaves those out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { fromInterleavedU8 } from '../image/io.js';
import { median } from '../runtime/stats.js';
import { stylizeImage } from '../stylize/model.js';
import type { Precision } from '../stylize/network.js';
import { loadModel, type LoadModelOptions } from '../stylize/style-model.js';
import { decodeFrames } from '../video/decode.js';
import { DEFAULT_X264_PRESET, type X264Preset } from '../video/encode.js';
import { probeVideo } from '../video/probe.js';
import { renderMotion, writeClip } from '../video/synthetic.js';

export interface VideoBenchOptions extends Pick<LoadModelOptions, 'modelsDir' | 'threads'> {
  model: string;
  precision: Precision;
  width: number;
  height: number;
  frames: number;
  /** The still the synthetic pan is made from, and the style. */
  photo: string;
  style: string;
  output: 'mp4' | 'webm';
  /** Rounds of (stylisation alone, pipeline, frame-by-frame pipeline); medians reported (default 1). */
  runs?: number;
  /** mp4 output: x264's preset (default the one `adain stylize` uses). */
  x264Preset?: X264Preset;
}

export interface VideoBenchResult {
  model: string;
  precision: Precision;
  width: number;
  height: number;
  frames: number;
  /** The x264 preset of an mp4 output; null for webm. */
  x264Preset: X264Preset | null;
  /** Rounds measured; every fps is the median over them. */
  runs: number;
  /** Whole pipeline, from the encoded clip to the encoded output, with the default temporal blend (what users get). */
  pipelineFps: number;
  /** The same run between its first and its last frame handed to the encoder: without the start (probe, ffmpeg start) and the flush. */
  steadyFps: number;
  /** Whole pipeline frame by frame (--temporal-blend 0: no blend, no cut detector). */
  frameByFrameFps: number;
  /** stylizeImage on frames already decoded, nothing written. */
  stylizeFps: number;
}

export async function runVideoBench(o: VideoBenchOptions): Promise<VideoBenchResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'adain-bench-video-'));
  const model = await loadModel(o.model, { modelsDir: o.modelsDir, threads: o.threads, precision: o.precision });
  try {
    const { data, info } = await sharp(o.photo).resize({ width: o.width * 2, withoutEnlargement: false }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const frames = renderMotion({ width: info.width, height: info.height, data }, { frames: o.frames, width: o.width, height: o.height, pan: 0.1, zoom: 1.1 });
    const clip = path.join(dir, 'clip.mp4');
    await writeClip(frames, o.width, o.height, 24, clip);
    const style = await model.styleStats(o.style);

    // warm-up: onnxruntime plans its buffers for the first size it sees
    await stylizeImage(model.network, fromInterleavedU8(frames[0], o.width, o.height), [style]);

    const vinfo = await probeVideo(clip);
    const decoded: Buffer[] = [];
    for await (const f of decodeFrames(clip, vinfo, { width: o.width, height: o.height })) decoded.push(f);
    // the same conversion as the pipeline's, so that only decoding, encoding and the temporal work differ
    const alone = async () => {
      const t = performance.now();
      for (const f of decoded) await stylizeImage(model.network, fromInterleavedU8(f, o.width, o.height), [style]);
      return decoded.length / ((performance.now() - t) / 1000);
    };

    // ffmpeg gets as many threads as onnxruntime, as `adain stylize --threads` gives it
    const pipeline = async (temporalBlend?: number) => {
      const marks: number[] = [];
      const start = performance.now();
      const r = await model.stylizeVideo(clip, [style], {
        output: path.join(dir, `out.${o.output}`), temporalBlend, ffmpegThreads: o.threads, x264Preset: o.x264Preset, onProgress: () => marks.push(performance.now()),
      });
      const fps = r.frames / ((performance.now() - start) / 1000);
      const steady = marks.length > 1 ? (marks.length - 1) / ((marks.at(-1)! - marks[0]) / 1000) : fps;
      return { frames: r.frames, fps, steady };
    };
    // rounds of all three in turn, medians over the rounds: a slow spell of a shared machine
    // then slows one round of each instead of one measure
    const rounds: { alone: number; piped: Awaited<ReturnType<typeof pipeline>>; plain: number }[] = [];
    for (let i = 0; i < (o.runs ?? 1); i++) rounds.push({ alone: await alone(), piped: await pipeline(), plain: (await pipeline(0)).fps });
    return {
      model: o.model, precision: o.precision, width: o.width, height: o.height, frames: rounds[0].piped.frames,
      x264Preset: o.output === 'mp4' ? o.x264Preset ?? DEFAULT_X264_PRESET : null, runs: rounds.length,
      pipelineFps: median(rounds.map((r) => r.piped.fps)), steadyFps: median(rounds.map((r) => r.piped.steady)),
      frameByFrameFps: median(rounds.map((r) => r.plain)), stylizeFps: median(rounds.map((r) => r.alone)),
    };
  } finally {
    await model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
