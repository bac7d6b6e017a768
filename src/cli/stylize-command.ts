import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../errors.js';
import { writeImage, type ImageFormat } from '../image/io.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_MEMORY_BUDGET } from '../stylize/model.js';
import { DEFAULT_STYLE_SIZE, loadModel, type StyleModel, type StylizeImageOptions } from '../stylize/style-model.js';
import { parseInteger, parseList, parseNumber, parseNumberList } from './options.js';
import { createProgress, lazyProgress } from './progress.js';

interface StylizeFlags {
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
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

export function stylizeCommand(): Command {
  return new Command('stylize')
    .alias('stylise')
    .description('Paint a content image (or a folder of them) in the style of one or more style images')
    .requiredOption('-c, --content <path>', 'content image, or a folder of images')
    .requiredOption('-s, --style <paths>', 'style image(s), comma-separated for interpolation, or a folder', parseList)
    .requiredOption('-o, --output <path>', 'output image (.png, .jpg, .webp), or a folder when --content is a folder')
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
    .option('--memory-budget <GB>', 'memory for one image; larger images are done in tiles', (v) => parseNumber('gigabytes', 0.5)(v) * 1024 ** 3, DEFAULT_MEMORY_BUDGET)
    .addOption(new Option('--format <fmt>', 'output format in folder mode').choices(['png', 'jpeg', 'webp']))
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--no-download', 'never download missing weights')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (o: StylizeFlags) => {
      const model = await openModel(o);
      try {
        if ((await stat(o.content))?.isDirectory()) await stylizeFolder(model, o);
        else await stylizeOne(model, o);
      } finally {
        await model.dispose();
      }
    });
}

async function openModel(o: StylizeFlags): Promise<StyleModel> {
  const dl = lazyProgress('Downloading weights', { unit: 'bytes' });
  try {
    return await loadModel(o.model, {
      modelsDir: o.modelsDir, encoder: o.encoder, decoder: o.decoder, threads: o.threads, download: o.download, onProgress: dl.onProgress,
    });
  } finally {
    dl.stop();
  }
}

function imageOptions(o: StylizeFlags): StylizeImageOptions {
  return {
    alpha: o.alpha, styleWeights: o.styleWeights, preserveColor: o.preserveColor, maxSize: o.maxSize,
    styleSize: o.styleSize, maxPixels: o.maxPixels, memoryBudget: o.memoryBudget,
  };
}

async function stylizeOne(model: StyleModel, o: StylizeFlags): Promise<void> {
  if ((await stat(o.style[0]))?.isDirectory()) throw new UserError(`--style ${o.style[0]} is a folder; folders of styles need --content to be a folder too`);
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

/** Every content x style pair; each style's statistics are computed once and reused. */
async function stylizeFolder(model: StyleModel, o: StylizeFlags): Promise<void> {
  if (o.mask) throw new UserError('--mask works on a single content image, not a folder');
  const contents = await listImages(o.content, '--content');
  const styleFiles = (await stat(o.style[0]))?.isDirectory() ? await listImages(o.style[0], '--style') : o.style;
  await fs.mkdir(o.output, { recursive: true });
  const opts = imageOptions(o);
  const stats = o.preserveColor ? undefined : await Promise.all(styleFiles.map((s) => model.styleStats(s, opts)));
  const format = o.format ?? 'png';
  const bar = o.quiet ? undefined : createProgress('Stylising', contents.length * styleFiles.length);
  let done = 0;
  for (const c of contents) {
    const content = await model.readContent(c, opts);
    for (const [k, s] of styleFiles.entries()) {
      const img = await model.stylizeToImage(content, stats ? [stats[k]] : [s], opts);
      const name = `${stem(c)}_stylized_${stem(s)}.${format === 'jpeg' ? 'jpg' : format}`;
      await writeImage(path.join(o.output, name), img);
      bar?.update(++done);
    }
  }
  bar?.stop();
}

async function listImages(dir: string, flag: string): Promise<string[]> {
  const files = (await fs.readdir(dir)).filter((f) => IMAGE_EXT.test(f)).sort().map((f) => path.join(dir, f));
  if (files.length === 0) throw new UserError(`${flag} ${dir}: no .jpg, .png or .webp images in this folder`);
  return files;
}

function stem(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '');
}

async function stat(p: string) {
  return fs.stat(p).catch(() => undefined);
}
