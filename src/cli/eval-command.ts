import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { availableModels, CONTENT_UNCHANGED, formatTable, parseDecoderEntry, runEval, type EvalEntry } from '../eval/run.js';
import { DEFAULT_OPTIMIZE_LR } from '../eval/optimize.js';
import { findModel } from '../models/registry.js';
import { defaultThreads } from '../runtime/session.js';
import { parseInteger, parseList, parseNumber } from './options.js';
import { createProgress } from './progress.js';

interface EvalFlags {
  content: string;
  style: string;
  contents: number;
  styles: number;
  seed: number;
  size: number;
  models?: string[];
  decoder: string[];
  optimizePairs: number;
  optimize: boolean;
  optimizeIterations: number[];
  optimizeLr: number;
  styleWeight: number;
  contentWeight: number;
  speedRuns: number;
  out: string;
  sheet: boolean;
  sheetContents: number;
  sheetStyles: number;
  thumb: number;
  json?: boolean;
  threads: number;
  modelsDir?: string;
  judge?: string;
  download: boolean;
  quiet?: boolean;
}

/** The repository root (two folders up from src/cli or dist/cli). */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_EVAL_CONTENT = path.resolve(REPO_ROOT, '../shared/data/content/test');
export const DEFAULT_EVAL_STYLE = path.resolve(REPO_ROOT, '../shared/data/style/test');

/** `stdout` receives the table or JSON (tests pass their own stream). */
export function evalCommand(stdout: Pick<NodeJS.WritableStream, 'write'> = process.stdout): Command {
  return new Command('eval')
    .description('Measure every model on held-out pairs with an independent judge (style and content distance, speed), with references and a contact sheet')
    .option('-c, --content <dir>', 'content images (searched recursively)', DEFAULT_EVAL_CONTENT)
    .option('-s, --style <dir>', 'style images (searched recursively)', DEFAULT_EVAL_STYLE)
    .option('--contents <n>', 'content images to draw (seeded)', parseInteger('a count'), 20)
    .option('--styles <n>', 'style images to draw (seeded); every content is paired with every style', parseInteger('a count'), 20)
    .option('--seed <n>', 'seed of the selection', parseInteger('a seed', 0), 0)
    .option('--size <n>', 'evaluation side: shorter side scaled to n, centre crop n x n (multiple of 8)', parseInteger('a size in pixels', 16), 256)
    .option('-m, --models <names>', 'models to evaluate (default: every model whose files are present)', parseList)
    .option('--decoder <NAME=MODEL:FILE>', 'also evaluate a decoder file with MODEL\'s encoder, as row NAME (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--optimize-pairs <n>', 'pairs (seeded subset) for the optimisation references', parseInteger('a pair count', 0), 6)
    .option('--no-optimize', 'skip the optimisation references')
    .option('--optimize-iterations <list>', 'iteration counts reported for the optimisation', (v: string) => parseList(v).map(parseInteger('an iteration count')), [100, 300])
    .option('--optimize-lr <lr>', 'Adam learning rate on the pixels', parseNumber('a learning rate', 0), DEFAULT_OPTIMIZE_LR)
    .option('--style-weight <w>', 'optimisation style weight', parseNumber('a weight', 0), 10)
    .option('--content-weight <w>', 'optimisation content weight', parseNumber('a weight', 0), 1)
    .option('--speed-runs <n>', 'timed 512x512 runs per model for ms_512 (0: no timing)', parseInteger('a run count', 0), 3)
    .option('-o, --out <dir>', 'folder for contact-sheet.png, optimize-sheet.png and results.json', 'eval-out')
    .option('--no-sheet', 'write no files')
    .option('--sheet-contents <n>', 'contents (rows) on the contact sheet', parseInteger('a count', 0), 4)
    .option('--sheet-styles <n>', 'styles (columns) on the contact sheet', parseInteger('a count', 0), 4)
    .option('--thumb <n>', 'thumbnail side on the sheets', parseInteger('a size in pixels', 16), 128)
    .option('--json', 'print the rows as JSON: [{model, pairs, style_distance, content_distance, cfsd, grid_score, ms_512}]')
    .option('-t, --threads <n>', 'CPU threads', parseInteger('a thread count'), defaultThreads())
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--judge <file>', 'the judge\'s weights instead of vgg19-normalised/vgg_normalised_conv3_1.pth')
    .option('--no-download', 'never download missing weights')
    .option('-q, --quiet', 'no progress bars')
    .addHelpText('after', `
The judge is the normalised VGG-19 (vgg_normalised_conv3_1.pth), the same for every model:
  style distance   = sum over relu1_1, relu2_1, relu3_1 of mean over channels of
                     (mu - mu_s)^2 + (sigma - sigma_s)^2 (per-channel mean and population std
                     over the pixels, eps 1e-5 inside the sqrt), output vs style image;
  content distance = mean of (f(output) - f(content))^2 over the relu3_1 features;
  cfsd             = content feature structural distance: mean over 8x8-px patches (relu3_1
                     pooled 2x2) of KL(content || output) between the softmax rows of the
                     patches' cosine self-similarity; 0 = the content's structure kept;
  grid score       = periodic luminance energy at 2, 4 and 8 px along x and y (log2 of each
                     spectral peak over its local floor, summed) in excess of the content's
                     and the style's: the decoder's upsampling grid; 0 = none.
Outputs are clamped to [0,1] first. Images are scaled so their shorter side is --size and
centre-cropped square; distances are means over the pairs (all contents x styles).
Rows: ${CONTENT_UNCHANGED} (the content image itself: the style distance of doing nothing),
each model (reconstruction-decoder models are references too), and, on a seeded subset of
--optimize-pairs pairs (pairs = "subset", with every model again for a like-for-like
comparison), optimize-N: Gatys et al. optimisation of the judge's own loss (so an upper
reference, not a blind competitor) from the content image, N Adam steps on the pixels.
ms_512: median ms of one 512x512 stylisation (style encoding included) after a warm-up;
for optimize-N the measured time of one 512x512 iteration times N (running it in full would
take minutes per row); 0 for ${CONTENT_UNCHANGED}.`)
    .action(async (o: EvalFlags) => {
      const models: EvalEntry[] | undefined = o.models?.map((name) => ({ name: findModel(name).name, model: name }));
      const extras = o.decoder.map(parseDecoderEntry);
      // Extra decoders come in addition to the named models (default: those on disk).
      const entries = models || extras.length ? [...(models ?? (await availableModels({ modelsDir: o.modelsDir }))), ...extras] : undefined;
      const report = await runEval({
        contentDir: o.content, styleDir: o.style, contents: o.contents, styles: o.styles, seed: o.seed, size: o.size,
        models: entries,
        optimizePairs: o.optimize ? o.optimizePairs : 0, optimizeIterations: o.optimize ? o.optimizeIterations : [],
        optimizeLr: o.optimizeLr, styleWeight: o.styleWeight, contentWeight: o.contentWeight, speedRuns: o.speedRuns,
        out: o.sheet ? o.out : undefined, sheetContents: o.sheetContents, sheetStyles: o.sheetStyles, thumb: o.thumb,
        threads: o.threads, modelsDir: o.modelsDir, judgeFile: o.judge, download: o.download,
        progress: o.quiet ? undefined : (label, total) => createProgress(label, total),
        log: o.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      if (o.json) stdout.write(JSON.stringify(report.rows.map((r) => ({ model: r.model, pairs: r.pairs, style_distance: r.style_distance, content_distance: r.content_distance, cfsd: r.cfsd, grid_score: r.grid_score, ms_512: r.ms_512 })), null, 2) + '\n');
      else stdout.write(formatTable(report) + '\n');
    });
}
