/** `adain stylize` with a video content: checks before the model loads, progress, Ctrl-C. */
import path from 'node:path';
import type { StylizeFlags } from './stylize-command.js';
import { ExitStatus, UserError } from '../errors.js';
import { checkImageFile, quoteName, type RgbImage } from '../image/io.js';
import type { ChannelStats } from '../stylize/features.js';
import type { StyleModel, StylizeVideoFileOptions } from '../stylize/style-model.js';
import { hasVideoExtension, isVideoOutput } from '../video/formats.js';
import { probeVideo } from '../video/probe.js';
export { DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND } from '../video/temporal.js';
import { checkVideoOutput, type VideoResult } from '../video/stylize-video.js';
import { checkOutputLocation, refuseOverwritingInputs, type NamedInput } from './output-paths.js';
import { createProgress } from './progress.js';

/** The stylize flags a video uses (a structural subset of the command's). */
/** The stylize flags the video path uses (the command's own, see stylize-command.ts). */
export type VideoFlags = Pick<StylizeFlags,
  'content' | 'style' | 'output' | 'encoder' | 'decoder' | 'alpha' | 'styleWeights' | 'preserveColor' | 'mask' | 'maxSize'
  | 'styleSize' | 'maxPixels' | 'memoryBudget' | 'temporal' | 'temporalBlend' | 'x264Preset' | 'threads' | 'quiet'>;


/**
 * Whether a single content is stylised as a video: by its extension, or a GIF written to a
 * video output (a GIF to an image output stays its first frame, as before).
 */
export function isVideoContent(content: string, output: string): boolean {
  return hasVideoExtension(content) || (path.extname(content).toLowerCase() === '.gif' && isVideoOutput(output));
}

/** The output name of a video in folder mode: its own container where adain writes it, else .mp4. */
export function folderVideoExtension(content: string): string {
  const ext = path.extname(content).toLowerCase();
  return isVideoOutput(`x${ext}`) && ext !== '.gif' ? ext : '.mp4';
}

function videoOptions(o: VideoFlags): Omit<StylizeVideoFileOptions, 'output'> {
  return {
    alpha: o.alpha, styleWeights: o.styleWeights, preserveColor: o.preserveColor, maxSize: o.maxSize,
    styleSize: o.styleSize, maxPixels: o.maxPixels, memoryBudget: o.memoryBudget, temporal: o.temporal, temporalBlend: o.temporalBlend, x264Preset: o.x264Preset,
    // --threads bounds the CPU the whole run takes, ffmpeg's share included
    ffmpegThreads: o.threads,
  };
}

/** Everything that can be refused without the networks, then the run itself. */
export async function prepareVideo(o: VideoFlags): Promise<(model: StyleModel) => Promise<void>> {
  if (o.mask) throw new UserError('--mask works on images, not videos');
  await checkVideoOutput(o.output);
  await checkOutputLocation(o.output);
  await refuseOverwritingInputs(o.output, [
    { flag: '--content', file: o.content },
    ...o.style.map((file): NamedInput => ({ flag: '--style', file })),
    ...(o.encoder ? [{ flag: '--encoder', file: o.encoder }] : []),
    ...(o.decoder ? [{ flag: '--decoder', file: o.decoder }] : []),
  ]);
  await probeVideo(o.content, { maxPixels: o.maxPixels });
  for (const file of o.style) await checkImageFile(file, { maxPixels: o.maxPixels });
  return async (model) => {
    const r = await runInterruptible(o.output, (signal) => {
      let bar: ReturnType<typeof createProgress> | undefined;
      return model.stylizeVideo(o.content, o.style, {
        ...videoOptions(o), output: o.output, signal,
        onProgress: o.quiet ? undefined : (p) => {
          bar ??= createProgress('Stylising video', p.total, { rate: 'fps' });
          bar.update(p.done, p.total);
        },
      }).then((r) => {
        bar?.stop();
        return r;
      }, (err: unknown) => {
        // off a terminal stop() prints a summary line, which would come before the one-line error
        if (process.stderr.isTTY) bar?.stop();
        throw err;
      });
    });
    if (!o.quiet) process.stderr.write(`Wrote ${o.output} (${describe(r)})\n`);
  };
}

/** One video of a folder run, with a style already read (statistics, or the image with --preserve-color). */
export async function stylizeVideoInFolder(model: StyleModel, content: string, style: ChannelStats | RgbImage, output: string, o: VideoFlags): Promise<void> {
  await runInterruptible(output, (signal) => model.stylizeVideo(content, [style], { ...videoOptions(o), output, signal }));
}

function describe(r: VideoResult): string {
  const fps = r.fpsNum / r.fpsDen;
  const audio = r.audio === 'copied' ? ', audio copied' : r.audio === 'encoded' ? ', audio re-encoded' : '';
  const cuts = r.cuts.length > 1 ? `, ${r.cuts.length - 1} scene cut${r.cuts.length > 2 ? 's' : ''}` : '';
  return `${r.frames} frames, ${r.width}x${r.height} at ${Number.isInteger(fps) ? fps : fps.toFixed(3)} fps${audio}${cuts}, ${(r.frames / r.seconds).toFixed(1)} frames/s`;
}

/** Ctrl-C stops the run, removes the partial file and exits 130; a second Ctrl-C quits at once. */
async function runInterruptible<T>(output: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort(new ExitStatus(130, 'interrupted'));
  };
  process.on('SIGINT', onSigint);
  try {
    return await work(ac.signal);
  } catch (err) {
    if (ac.signal.aborted) {
      process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[2K' : ''}adain: interrupted; ${quoteName(output)} was not written\n`);
      throw new ExitStatus(130);
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
