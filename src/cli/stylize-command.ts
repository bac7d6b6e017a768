import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../errors.js';
import { checkImageFile, hasImageExtension, INPUT_EXTENSIONS, quoteName, writeImage, type ImageFormat, type RgbImage } from '../image/io.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import type { ChannelStats } from '../stylize/features.js';
import { DEFAULT_MEMORY_BUDGET } from '../stylize/model.js';
import { DEFAULT_STYLE_SIZE, loadModel, type StyleModel, type StylizeImageOptions } from '../stylize/style-model.js';
import { parseInteger, parseList, parseNumber, parseNumberList } from './options.js';
import { checkOutputFile, checkOutputFolder, fileIdentity, isWithinFolder, refuseOverwritingInputs, type NamedInput } from './output-paths.js';
import { createProgress, lazyProgress } from './progress.js';
import { FEATURE_TRANSFORMS, type FeatureTransform } from '../stylize/model.js';
import { DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND, folderVideoExtension, isVideoContent, prepareVideo, stylizeVideoInFolder } from './stylize-video.js';
import { hasVideoExtension, OUTPUT_EXTENSIONS, VIDEO_EXTENSIONS } from '../video/formats.js';
import { DEFAULT_X264_PRESET, X264_PRESETS, type X264Preset } from '../video/encode.js';
import { PRECISION_OPTIONS, type PrecisionOption } from '../quant/precision.js';

export interface StylizeFlags {
  content: string;
  style: string[];
  output: string;
  model: string;
  modelsDir?: string;
  encoder?: string;
  decoder?: string;
  alpha: number;
  styleWeights?: number[];
  preserveColor?: boolean;
  mask?: string;
  maxSize?: number;
  styleSize: number;
  maxPixels: number;
  memoryBudget: number;
  format?: ImageFormat;
  threads: number;
  download: boolean;
  quiet?: boolean;
  temporal: number;
  temporalBlend: number;
  transform: FeatureTransform;
  x264Preset: X264Preset;
  precision: PrecisionOption;
}

/** What this command writes in folder mode; in a content or style folder that holds the output folder, such files are results of an earlier run, not inputs. */
const OUTPUT_NAME = /_stylized_.+\.(png|jpe?g|webp|mp4|m4v|mov|mkv|webm)$/i;

// Keep the format lists in step with INPUT_FORMATS and INPUT_EXTENSIONS in image/io.ts.
const HELP = `
Inputs (content, style, mask) are PNG, JPEG, WebP, GIF, TIFF or AVIF images, told apart by
their contents, not their names; SVG is refused. The output may not be one of the inputs;
its name and folder are checked before the model is loaded.

Folders: with --content FOLDER, every image directly in it (by extension: .png .jpg .jpeg
.webp .gif .tif .tiff .avif; no hidden files, no sub-folders) is stylised with every style
into --output FOLDER, as <content>_stylized_<style>.png (see --format). An image that cannot
be read is skipped with a warning naming it and the rest are done; a summary says how many
were done and skipped, and the exit code is 2 if anything was skipped. Videos in the
folder (${VIDEO_EXTENSIONS.join(' ')})
are stylised too, into <content>_stylized_<style>.mp4 (.mov, .mkv, .webm, .m4v keep their
own container). In a content or
style folder that is the output folder or holds it, files named *_stylized_* are earlier
results, never inputs, so a rerun does not stylise them again.

Videos (needs the system ffmpeg): --content clip.mp4 (any container ffmpeg reads; a .gif
content is a video when the output is one) and --output out.mp4|.m4v|.mov|.mkv (H.264),
.webm (VP9) or .gif: frame rate, frame count, duration and size (or --max-size; H.264 drops
an odd last row/column) are kept, audio is copied where the container allows it. Per frame:
--alpha, --style-weights, --preserve-color (fitted once, on the first frame), --temporal,
--temporal-blend.
`;

export function stylizeCommand(): Command {
  return new Command('stylize')
    .alias('stylise')
    .description('Paint a content image (or a folder of them) in the style of one or more style images')
    .requiredOption('-c, --content <path>', 'content image, or a folder of images')
    .requiredOption('-s, --style <paths>', 'style image(s), comma-separated for interpolation, or a folder', parseList)
    .requiredOption('-o, --output <path>', `output image (.png, .jpg, .webp) or video (${OUTPUT_EXTENSIONS.join(', ')}), or a folder when --content is a folder`)
    .option('-m, --model <name>', 'model from `adain models`', DEFAULT_MODEL)
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--encoder <file>', 'encoder weights file, instead of the model\'s')
    .option('--decoder <file>', 'decoder weights file (.pth or .safetensors), instead of the model\'s')
    .option('-a, --alpha <a>', 'content/style trade-off: 0 = content, 1 = full style', parseNumber('a number', 0, 1), 1)
    .option('--style-weights <w>', 'weights of the styles for interpolation, e.g. 0.7,0.3', parseNumberList('a non-negative number'))
    .option('--preserve-color', 'keep the content image\'s colours')
    .option('--mask <file>', 'black-and-white mask: style 1 where white, style 2 where black')
    .option('--max-size <n>', 'scale the content\'s longer side down to n pixels first', parseInteger('a size in pixels'))
    .option('--style-size <n>', 'scale style images so their shorter side is n pixels', parseInteger('a size in pixels'), DEFAULT_STYLE_SIZE)
    .option('--max-pixels <n>', 'refuse images with more pixels than this', parseNumber('a pixel count', 1), 100e6)
    .addOption(new Option('--memory-budget <GB>', 'memory for one image; larger images are done in tiles')
      .argParser((v) => parseNumber('gigabytes', 0.5)(v) * 1024 ** 3).default(DEFAULT_MEMORY_BUDGET, String(DEFAULT_MEMORY_BUDGET / 1024 ** 3)))
    .addOption(new Option('--format <fmt>', 'output format in folder mode').choices(['png', 'jpeg', 'webp']))
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--no-download', 'never download missing weights')
    .addOption(new Option('--precision <p>', 'fp32; int8 (needs `adain calibrate` once); auto: int8 when calibrated and faster on this CPU').choices(PRECISION_OPTIONS).default('fp32'))
    .addOption(new Option('--transform <t>', 'how the content takes the style: adain (per-channel mean and std, the paper) or wct (the style\'s full channel covariance: stronger style, images only)').choices(FEATURE_TRANSFORMS).default('adain'))
    .option('--temporal <s>', 'videos: smoothing of the content statistics across frames (0 = frame by frame); reset at scene cuts', parseNumber('a number', 0, 1), DEFAULT_TEMPORAL)
    .option('--temporal-blend <k>', 'videos: mix each output pixel with the previous output\'s where the input pixel did not change (0 = off); reset at scene cuts', parseNumber('a number', 0, 0.99), DEFAULT_TEMPORAL_BLEND)
    .addOption(new Option('--x264-preset <preset>', 'videos written as H.264 (.mp4 .m4v .mov .mkv): x264\'s preset, slower = smaller file').choices(X264_PRESETS).default(DEFAULT_X264_PRESET))
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText('after', HELP)
    .action(async (o: StylizeFlags) => {
      // Everything that can be checked without the networks is, before they are loaded.
      const run = (await stat(o.content))?.isDirectory() ? await prepareFolder(o)
        : isVideoContent(o.content, o.output) ? await prepareVideo(refuseWctVideo(o, [o.content])) : await prepareOne(o);
      const model = await openModel(o);
      try {
        await run(model);
      } finally {
        await model.dispose();
      }
    });
}

type Run = (model: StyleModel) => Promise<void>;

async function openModel(o: StylizeFlags): Promise<StyleModel> {
  const dl = lazyProgress('Downloading weights', { unit: 'bytes' });
  try {
    return await loadModel(o.model, {
      modelsDir: o.modelsDir, encoder: o.encoder, decoder: o.decoder, threads: o.threads, download: o.download, onProgress: dl.onProgress,
      precision: o.precision,
    });
  } finally {
    dl.stop();
  }
}

function imageOptions(o: StylizeFlags): StylizeImageOptions {
  return {
    alpha: o.alpha, styleWeights: o.styleWeights, preserveColor: o.preserveColor, maxSize: o.maxSize,
    styleSize: o.styleSize, maxPixels: o.maxPixels, memoryBudget: o.memoryBudget, transform: o.transform,
  };
}

/** Video smooths AdaIN's content statistics across frames; wct has none of those to smooth yet. */
function refuseWctVideo(o: StylizeFlags, videos: readonly string[]): StylizeFlags {
  if (o.transform === 'wct' && videos.length) throw new UserError(`--transform wct works on images, not videos (${quoteName(videos[0])}); use --transform adain for videos`);
  return o;
}

async function prepareOne(o: StylizeFlags): Promise<Run> {
  if ((await stat(o.style[0]))?.isDirectory()) throw new UserError(`--style ${o.style[0]} is a folder; folders of styles need --content to be a folder too`);
  await checkOutputFile(o.output);
  const images: NamedInput[] = [
    { flag: '--content', file: o.content },
    ...o.style.map((file) => ({ flag: '--style', file })),
    ...(o.mask ? [{ flag: '--mask', file: o.mask }] : []),
  ];
  const weights: NamedInput[] = [
    ...(o.encoder ? [{ flag: '--encoder', file: o.encoder }] : []),
    ...(o.decoder ? [{ flag: '--decoder', file: o.decoder }] : []),
  ];
  await refuseOverwritingInputs(o.output, [...images, ...weights]);
  for (const { file } of images) await checkImageFile(file, { maxPixels: o.maxPixels });
  return (model) => stylizeOne(model, o);
}

async function stylizeOne(model: StyleModel, o: StylizeFlags): Promise<void> {
  const started = performance.now();
  let bar: ReturnType<typeof createProgress> | undefined;
  const img = await model.stylizeToImage(o.content, o.style, {
    ...imageOptions(o), mask: o.mask,
    onTile: o.quiet ? undefined : (stage, done, total) => {
      bar ??= createProgress('Stylising in tiles', 2 * total);
      bar.update(stage === 'encode' ? done : total + done);
    },
  });
  bar?.stop();
  await writeImage(o.output, img);
  if (!o.quiet) {
    const rss = process.resourceUsage().maxRSS / 1024;
    process.stderr.write(`Wrote ${o.output} (${img.width}x${img.height}) in ${((performance.now() - started) / 1000).toFixed(2)} s, peak RSS ${rss.toFixed(0)} MB\n`);
  }
}

async function prepareFolder(o: StylizeFlags): Promise<Run> {
  if (o.mask) throw new UserError('--mask works on a single content image, not a folder');
  await checkOutputFolder(o.output);
  const contents = await listImages(o.content, '--content', o.output);
  refuseWctVideo(o, contents.filter(hasVideoExtension));
  const styleFiles = (await stat(o.style[0]))?.isDirectory() ? await listImages(o.style[0], '--style', o.output) : o.style;
  return (model) => stylizeFolder(model, o, contents, styleFiles);
}

/** Every content x style pair; each style's statistics are computed once and reused. */
async function stylizeFolder(model: StyleModel, o: StylizeFlags, contents: string[], styleFiles: string[]): Promise<void> {
  await fs.mkdir(o.output, { recursive: true });
  const opts = imageOptions(o);
  const skipped: string[] = [];
  // Only input problems (UserErrors from reading or stylising) skip a file; anything else,
  // including a failed write, stops the run.
  const skipOrThrow = (file: string, err: unknown) => {
    if (!(err instanceof UserError)) throw err;
    skipped.push(file);
    // clear a progress bar's line on a terminal, so the warning is not drawn into it
    process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[2K' : ''}adain: warning: skipped ${quoteName(file)}: ${err.message}\n`);
  };

  // Styles are read once: as statistics, or as images when --preserve-color recolours them per content.
  const styles: { file: string; style: ChannelStats | RgbImage }[] = [];
  for (const file of styleFiles) {
    try {
      styles.push({ file, style: o.preserveColor ? await model.readStyle(file, opts) : await model.styleStats(file, opts) });
    } catch (err) {
      skipOrThrow(file, err);
    }
  }
  if (styles.length === 0) throw new UserError(`none of the ${styleFiles.length} style images could be read (see the warnings above)`);

  // Never write over an input, nor twice to one name (a.jpg and a.png give the same output name).
  const inputs = new Set<string>();
  for (const f of [...contents, ...styleFiles]) inputs.add((await fileIdentity(f)).real);
  const outDir = (await fileIdentity(o.output)).real;
  const written = new Map<string, string>();

  const format = o.format ?? 'png';
  const bar = o.quiet ? undefined : createProgress('Stylising', contents.length * styles.length);
  let done = 0;
  for (const c of contents) {
    const video = hasVideoExtension(c);
    let content: RgbImage | undefined;
    try {
      if (!video) content = await model.readContent(c, opts);
    } catch (err) {
      skipOrThrow(c, err);
      continue;
    }
    for (const { file: s, style } of styles) {
      const name = `${stem(c)}_stylized_${stem(s)}${video ? folderVideoExtension(c) : `.${format === 'jpeg' ? 'jpg' : format}`}`;
      let img: RgbImage | undefined;
      try {
        if (inputs.has(path.join(outDir, name))) throw new UserError(`its output ${quoteName(name)} would overwrite an input of this run; rename the file`);
        const first = written.get(name);
        if (first) throw new UserError(`its output ${quoteName(name)} was already written for ${quoteName(first)} in this run; rename one of them`);
        // split so that each branch is an array of one kind, which is what stylizeToImage takes
        if (content) img = await model.stylizeToImage(content, 'mean' in style ? [style] : [style], opts);
        else await stylizeVideoInFolder(model, c, style, path.join(o.output, name), o);
      } catch (err) {
        skipOrThrow(c, err);
        break;
      }
      if (img) await writeImage(path.join(o.output, name), img);
      written.set(name, c);
      done++;
      bar?.update(done);
    }
  }
  bar?.stop();
  const summary = `${done} done, ${skipped.length} skipped`;
  if (skipped.length) throw new UserError(`${summary} (${skipped.map(quoteName).join(', ')}; see the warnings above)`);
  if (!o.quiet) process.stderr.write(`Stylised ${contents.length} x ${styles.length}: ${summary}, in ${o.output}\n`);
}

/** The images directly in `dir` (not in sub-folders, not hidden), without the outputs of earlier runs when the output folder is `dir` or inside it. */
async function listImages(dir: string, flag: string, outputDir: string): Promise<string[]> {
  const holdsOutput = await isWithinFolder(outputDir, dir);
  const files: string[] = [];
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).sort();
  } catch (err) {
    throw new UserError(`${flag} ${quoteName(dir)}: cannot list this folder (${(err as NodeJS.ErrnoException).code ?? String(err)}); check its permissions`);
  }
  for (const entry of entries) {
    // dot files include macOS's ._x.jpg resource forks, which are not images
    if (entry.startsWith('.') || !(hasImageExtension(entry) || hasVideoExtension(entry)) || (holdsOutput && OUTPUT_NAME.test(entry))) continue;
    const file = path.join(dir, entry);
    if ((await stat(file))?.isDirectory()) continue;
    files.push(file);
  }
  if (files.length === 0) {
    throw new UserError(`${flag} ${dir}: no images in this folder (${INPUT_EXTENSIONS.join(' ')})${holdsOutput ? ', other than earlier outputs (*_stylized_*)' : ''}`);
  }
  return files;
}

function stem(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '');
}

async function stat(p: string) {
  return fs.stat(p).catch(() => undefined);
}
