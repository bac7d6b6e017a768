import { refuseOverwritingInputs } from './output-paths.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { formatFromPath, quoteName, readImage, resizeImage, writeImage, type RgbImage } from '../image/io.js';
import { Judge } from '../eval/judge.js';
import {
  DEFAULT_OPTIMIZE_CONTENT_WEIGHT, DEFAULT_OPTIMIZE_LR, DEFAULT_OPTIMIZE_STYLE_WEIGHT, GatysOptimizer, optimizeSide,
} from '../eval/optimize.js';
import { defaultThreads } from '../runtime/session.js';
import { parseInteger, parseNumber } from './options.js';
import { createProgress } from './progress.js';

interface OptimizeFlags {
  content: string;
  style: string;
  output: string;
  iterations: number;
  styleWeight: number;
  contentWeight: number;
  size: number;
  styleSize?: number;
  lr: number;
  maxPixels: number;
  threads: number;
  modelsDir?: string;
  judge?: string;
  download: boolean;
  quiet?: boolean;
}

export function optimizeCommand(): Command {
  return new Command('optimize')
    .alias('optimise')
    .description('Slow, best-quality style transfer: optimise the image itself (Gatys et al.) against the VGG-19 content and style losses')
    .requiredOption('-c, --content <file>', 'content image (the starting point)')
    .requiredOption('-s, --style <file>', 'style image')
    .requiredOption('-o, --output <file>', 'output image (.png, .jpg, .webp)')
    .option('-n, --iterations <n>', 'Adam steps on the pixels', parseInteger('an iteration count'), 300)
    .option('--style-weight <w>', 'weight of the style loss', parseNumber('a weight', 0), DEFAULT_OPTIMIZE_STYLE_WEIGHT)
    .option('--content-weight <w>', 'weight of the content loss', parseNumber('a weight', 0), DEFAULT_OPTIMIZE_CONTENT_WEIGHT)
    .option('--size <n>', 'scale the content\'s longer side down to n pixels (never up); sides are rounded down to a multiple of 4', parseInteger('a size in pixels', 8), 512)
    .option('--style-size <n>', 'scale the style image so its shorter side is n pixels (default: --size)', parseInteger('a size in pixels', 8))
    .option('--lr <lr>', 'Adam learning rate on pixel values in [0,1]', parseNumber('a learning rate', 0), DEFAULT_OPTIMIZE_LR)
    .option('--max-pixels <n>', 'refuse images with more pixels than this', parseNumber('a pixel count', 1), 100e6)
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--judge <file>', 'VGG weights instead of vgg19-normalised/vgg_normalised_conv3_1.pth')
    .option('--no-download', 'never download missing weights')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText('after', `
Starts from the content image and minimises
  content weight * mean((f(x) - f(content))^2) at relu3_1
  + style weight * sum over relu1_1, relu2_1, relu3_1 of mean over channels of
    (mu(x) - mu(style))^2 + (sigma(x) - sigma(style))^2
with the normalised VGG-19 (the same network and loss as \`adain eval\`'s judge), by Adam on
the pixels, clamped to [0,1] after every step. The output has the optimised size (the
content scaled to --size). Each iteration is a forward and backward pass through VGG-19 to
relu3_1: about 100x the cost of one AdaIN stylisation, so expect minutes at 512 pixels.`)
    .action(async (o: OptimizeFlags) => {
      formatFromPath(o.output); // a bad extension fails now, not after minutes of work
      const dir = path.dirname(path.resolve(o.output));
      if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) throw new UserError(`cannot write ${quoteName(o.output)}: folder ${quoteName(dir)} does not exist; create it first`);
      await refuseOverwritingInputs(o.output, [{ flag: '--content', file: o.content }, { flag: '--style', file: o.style }, ...(o.judge ? [{ flag: '--judge', file: o.judge }] : [])]);

      const content = await fitContent(await readImage(o.content, { maxSize: o.size, maxPixels: o.maxPixels }));
      const style = await fitStyle(await readImage(o.style, { maxPixels: o.maxPixels }), o.styleSize ?? o.size);
      const judge = await Judge.load({ threads: o.threads, modelsDir: o.modelsDir, download: o.download, file: o.judge });
      const started = performance.now();
      let result;
      try {
        const contentTarget = await judge.contentTarget(content);
        const styleTarget = await judge.styleTarget(style);
        const opt = await GatysOptimizer.create({
          weights: judge.weights, width: content.width, height: content.height, contentWeight: o.contentWeight, styleWeight: o.styleWeight,
        }, { threads: o.threads });
        const bar = o.quiet ? undefined : createProgress(`Optimising ${content.width}x${content.height}`, o.iterations);
        try {
          result = await opt.run(content, contentTarget, styleTarget, { iterations: o.iterations, lr: o.lr, onIteration: (i) => bar?.update(i) });
        } finally {
          bar?.stop();
          await opt.dispose();
        }
        await writeImage(o.output, result.image);
        if (!o.quiet) {
          const end = await judge.measure(result.image, contentTarget, styleTarget);
          const first = result.losses[0];
          const line = first
            ? `style loss ${first.style.toPrecision(4)} -> ${end.style.toPrecision(4)}, content loss ${first.content.toPrecision(4)} -> ${end.content.toPrecision(4)}`
            : 'no iterations';
          process.stderr.write(`Wrote ${o.output} (${content.width}x${content.height}) in ${((performance.now() - started) / 1000).toFixed(1)} s: ${line}\n`);
        }
      } finally {
        await judge.dispose();
      }
    });
}

/** Sides rounded down to a multiple of 4 (the optimisation graph's two exact max-poolings). */
async function fitContent(img: RgbImage): Promise<RgbImage> {
  const w = optimizeSide(img.width), h = optimizeSide(img.height);
  return w === img.width && h === img.height ? img : resizeImage(img, w, h);
}

/** Shorter side scaled to `size` (at least 8 pixels each way). */
async function fitStyle(img: RgbImage, size: number): Promise<RgbImage> {
  const scale = size / Math.min(img.width, img.height);
  const w = Math.max(8, Math.round(img.width * scale)), h = Math.max(8, Math.round(img.height * scale));
  return w === img.width && h === img.height ? img : resizeImage(img, w, h);
}
