import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../errors.js';
import { FLICKER_CLIPS, flickerSettings, formatFlickerTable, runFlickerTable, type FlickerClipName } from '../eval/flicker-table.js';
import { availableModels, CONTENT_UNCHANGED, formatTable, hasCalibration, parseDecoderEntry, parseModelSpec, parsePrecisionList, parseTransformList, runEval, withPrecisions, withTransforms } from '../eval/run.js';
import { DEFAULT_OPTIMIZE_LR } from '../eval/optimize.js';
import { DEFAULT_MODEL } from '../models/registry.js';
import { PRECISION_OPTIONS, type PrecisionOption } from '../quant/precision.js';
import { defaultThreads } from '../runtime/session.js';
import { DEFAULT_TEMPORAL, DEFAULT_TEMPORAL_BLEND } from '../video/temporal.js';
import { parseInteger, parseList, parseNumber, parseNumberList, withParentFlags } from './options.js';
import { createProgress } from './progress.js';

interface EvalFlags {
  content: string;
  style: string;
  contents: number;
  /** Raw until the action (see SHARED_WITH_VIDEO). */
  styles: number | string;
  seed: number;
  size: number | string;
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
  precision?: string;
  transform?: string;
  alpha: number;
}

/** The repository root (two folders up from src/cli or dist/cli). */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_EVAL_CONTENT = path.resolve(REPO_ROOT, '../shared/data/content/test');
export const DEFAULT_EVAL_STYLE = path.resolve(REPO_ROOT, '../shared/data/style/test');
const DEFAULT_VIDEO_STYLE = path.resolve(REPO_ROOT, 'examples/scream.jpg');

/**
 * commander hands the flags after `eval video` to `eval` first (the program does not use
 * positional options), and eval keeps those it declares. --size, --styles and --precision mean
 * other things to `eval video`, so eval takes them as raw strings and each action parses them
 * its own way; the video action takes these flags from eval (withParentFlags) and refuses the
 * others of eval's.
 */
const SHARED_WITH_VIDEO = new Set(['content', 'size', 'styles', 'precision', 'models', 'threads', 'modelsDir', 'judge', 'download', 'json', 'quiet', 'executionProvider']);

const raw = (v: string): string | number => v;

/** A raw flag value parsed in an action, refused with commander's own message (and exit code 2 from main). */
function parseLater<T>(cmd: Command, flags: string, value: string | number | T, parse: (v: string) => T): T {
  if (typeof value !== 'string') return value as T;
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof InvalidArgumentError) cmd.error(`error: option '${flags}' argument '${value}' is invalid. ${err.message}`, { exitCode: err.exitCode, code: err.code });
    throw err;
  }
}

/** `stdout` receives the table or JSON (tests pass their own stream). */
export function evalCommand(stdout: Pick<NodeJS.WritableStream, 'write'> = process.stdout): Command {
  return new Command('eval')
    .description('Measure every model on held-out pairs with an independent judge (style and content distance, speed), with references and a contact sheet; `eval video`: flicker of the video settings')
    .hook('preSubcommand', (self, sub) => { sub.copyInheritedSettings(self); })
    .addCommand(evalVideoCommand(stdout))
    .option('-c, --content <dir>', 'content images (searched recursively)', DEFAULT_EVAL_CONTENT)
    .option('-s, --style <dir>', 'style images (searched recursively)', DEFAULT_EVAL_STYLE)
    .option('--contents <n>', 'content images to draw (seeded)', parseInteger('a count'), 20)
    .option('--styles <n>', 'style images to draw (seeded); every content is paired with every style', raw, 20)
    .option('--seed <n>', 'seed of the selection', parseInteger('a seed', 0), 0)
    .option('--size <n>', 'evaluation side: shorter side scaled to n, centre crop n x n (multiple of 8)', raw, 256)
    .option('-m, --models <names>', 'models to evaluate, NAME or NAME@fp32 / NAME@int8 (default: every model whose files are present)', parseList)
    .option('--precision <list>', 'evaluate each model (and --decoder) at these precisions, rows NAME@fp32, NAME@int8 (int8 needs `adain calibrate`; with the default models, those without a calibration get no int8 row)')
    .option('-a, --alpha <a>', 'content/style trade-off of every model row, as stylize --alpha', parseNumber('a number', 0, 1), 1)
    .option('--transform <list>', 'evaluate each model (and --decoder) with these feature transforms: adain (row NAME), wct (row NAME+wct: the style\'s full channel covariance)')
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
    .option('--json', 'print the rows as JSON: [{model, pairs, style_distance, content_distance, cfsd, grid_score, ms_512}], with precision on rows that name one')
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
take minutes per row); 0 for ${CONTENT_UNCHANGED}.
int8: -m cd16x-r41,cd16x-r41@int8 (or --precision fp32,int8) puts the int8 network (the QDQ
graphs of stylize --precision int8) beside the fp32 one, judged on the same pairs.
wct: --transform adain,wct puts NAME+wct rows (stylize --transform wct) beside NAME; --alpha
sets the content/style trade-off of every row.
Video: adain eval video measures flicker per --temporal / --temporal-blend setting on clips
with a known motion (adain eval video --help).`)
    .action(async (o: EvalFlags, cmd: Command) => {
      const size = parseLater(cmd, '--size <n>', o.size, parseInteger('a size in pixels', 16));
      const styles = parseLater(cmd, '--styles <n>', o.styles, parseInteger('a count'));
      const precision = o.precision === undefined ? undefined : parsePrecisionList(o.precision);
      const transforms = o.transform === undefined ? undefined : parseTransformList(o.transform);
      const named = o.models?.map(parseModelSpec);
      const extras = o.decoder.map(parseDecoderEntry);
      const resolve = { modelsDir: o.modelsDir, download: o.download };
      let entries = named || extras.length || precision ? withPrecisions([...(named ?? (await availableModels(resolve))), ...extras], precision) : undefined;
      if (entries && !named && precision?.includes('int8')) {
        // the models on disk are a default, not a request: an uncalibrated one is left out at int8, not fatal
        const kept = [];
        for (const e of entries) {
          if (e.precision === 'int8' && !e.decoder && !(await hasCalibration(e, resolve)).found) {
            if (!o.quiet) process.stderr.write(`${e.name}: no int8 calibration (adain calibrate --model ${e.model}); left out\n`);
          } else kept.push(e);
        }
        entries = kept;
      }
      if (transforms) entries = withTransforms(entries ?? (await availableModels(resolve)), transforms);
      const report = await runEval({
        contentDir: o.content, styleDir: o.style, contents: o.contents, styles, seed: o.seed, size,
        models: entries,
        optimizePairs: o.optimize ? o.optimizePairs : 0, optimizeIterations: o.optimize ? o.optimizeIterations : [],
        optimizeLr: o.optimizeLr, styleWeight: o.styleWeight, contentWeight: o.contentWeight, speedRuns: o.speedRuns, alpha: o.alpha,
        out: o.sheet ? o.out : undefined, sheetContents: o.sheetContents, sheetStyles: o.sheetStyles, thumb: o.thumb,
        threads: o.threads, modelsDir: o.modelsDir, judgeFile: o.judge, download: o.download,
        progress: o.quiet ? undefined : (label, total) => createProgress(label, total),
        log: o.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      if (o.json) {
        stdout.write(JSON.stringify(report.rows.map((r) => ({
          model: r.model, pairs: r.pairs, style_distance: r.style_distance, content_distance: r.content_distance, cfsd: r.cfsd, grid_score: r.grid_score, ms_512: r.ms_512,
          ...(r.precision ? { precision: r.precision } : {}), ...(r.transform ? { transform: r.transform } : {}),
        })), null, 2) + '\n');
      } else {
        stdout.write(formatTable(report) + '\n');
      }
    });
}

interface EvalVideoFlags {
  content: string;
  model: string;
  /** From `eval` (-m), when given there. */
  models?: string[];
  temporal: number[];
  temporalBlend: number[];
  frames: number;
  size: string;
  styles: string;
  styleSize: number;
  clips: FlickerClipName[];
  precision: string;
  threads: number;
  modelsDir?: string;
  judge?: string;
  download: boolean;
  json?: boolean;
  quiet?: boolean;
}

function parseClipList(v: string): FlickerClipName[] {
  const list = parseList(v);
  for (const c of list) {
    if (!(FLICKER_CLIPS as readonly string[]).includes(c)) throw new InvalidArgumentError(`unknown clip ${JSON.stringify(c)}; choose from ${FLICKER_CLIPS.join(', ')}`);
  }
  return list as FlickerClipName[];
}

/** `adain eval video`: the flicker table (eval/flicker-table.ts). */
function evalVideoCommand(stdout: Pick<NodeJS.WritableStream, 'write'>): Command {
  return new Command('video')
    .description('Measure flicker and style distance of the video settings (--temporal, --temporal-blend) on clips with a known motion')
    .option('-c, --content <dir>', 'photos the clips are rendered from', DEFAULT_EVAL_CONTENT)
    .option('-m, --model <name>', 'model (one)', DEFAULT_MODEL)
    .addOption(new Option('--temporal <list>', 'values of stylize --temporal to measure, each with the blend off').argParser(parseNumberList('a number')).default([DEFAULT_TEMPORAL], String(DEFAULT_TEMPORAL)))
    .addOption(new Option('--temporal-blend <list>', 'values of stylize --temporal-blend to measure, each with --temporal 0').argParser(parseNumberList('a number')).default([DEFAULT_TEMPORAL_BLEND], `${DEFAULT_TEMPORAL_BLEND}, stylize's default`))
    .option('--frames <n>', 'frames per clip', parseInteger('a frame count', 4, 10000), 48)
    .option('--size <WxH>', 'clip size (even sides)', '256x144')
    .addOption(new Option('--styles <list>', 'style images, comma-separated; every clip is stylised with each').default(DEFAULT_VIDEO_STYLE, 'examples/scream.jpg'))
    .option('--style-size <n>', 'style images scaled so their shorter side is n', parseInteger('a size in pixels', 16), 256)
    .addOption(new Option('--clips <list>', `clips to measure, from ${FLICKER_CLIPS.join(', ')}`).argParser(parseClipList).default([...FLICKER_CLIPS], 'all'))
    .option('--precision <p>', `${PRECISION_OPTIONS.join(', ')}: fp32; int8 (needs \`adain calibrate\` once); auto: int8 when calibrated and faster on this CPU`, 'fp32')
    .option('-t, --threads <n>', 'CPU threads (onnxruntime and each ffmpeg)', parseInteger('a thread count'), defaultThreads())
    .option('--models-dir <dir>', 'folder with weight files (also $ADAIN_MODELS_DIR)')
    .option('--judge <file>', 'the judge\'s weights instead of vgg19-normalised/vgg_normalised_conv3_1.pth')
    .option('--no-download', 'never download missing weights')
    .option('--json', 'print the report as JSON: {model, precision, frames, width, height, styles, clips, rows: [{setting, temporal, temporal_blend, default, flicker: {clip: ratio}, mean_flicker, flicker_change, style_distance, style_change, cuts_found}]}')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', `
Clips (rendered in JS from photos of --content with sub-pixel steps, encoded as H.264 at
crf 10 so the codec adds little change of its own; needs the system ffmpeg):
  pan, pan+zoom, zoom   slow pans and zooms over one photo;
  cut                   half a clip of one photo, then another: the cut detector must find it;
  pan+exposure          a pan with +-4% brightness jitter per frame (auto exposure hunting);
  still+noise           a still shot with sensor noise of 3 levels of 255.
Each clip goes through the video pipeline (adain stylize) once per setting and style.
  flicker        = mean |out_t - out_t-1| / mean |in_t - in_t-1| over the clip's consecutive
                   frames (the cut's pair left out); about what the texture's contrast makes it
                   for a stylisation that only follows the motion, higher when it pops;
  style distance = the judge's (as in adain eval), output frame vs style image, mean over
                   every frame.
Rows: frame by frame (--temporal 0 --temporal-blend 0: the baseline of both "vs" columns),
then each --temporal value with the blend off, then each --temporal-blend value with
--temporal 0. The full table of docs/VIDEO.md:
  adain eval video --temporal 0,0.5,0.8,0.9,1 --temporal-blend 0.3,0.5,0.7,0.8 -t 1`)
    .action(async (_flags: EvalVideoFlags, cmd: Command) => {
      const parent = cmd.parent;
      const foreign = parent?.options.filter((x) => !SHARED_WITH_VIDEO.has(x.attributeName()) && parent.getOptionValueSource(x.attributeName()) === 'cli') ?? [];
      if (foreign.length) throw new UserError(`${foreign.map((x) => x.long).join(', ')}: not a flag of adain eval video; see adain eval video --help`);
      const o = withParentFlags(cmd) as unknown as EvalVideoFlags;
      let model = o.model;
      if (o.models && parent?.getOptionValueSource('models') === 'cli') {
        if (o.models.length !== 1) throw new UserError(`-m ${o.models.join(',')}: adain eval video measures one model; pass -m NAME`);
        model = o.models[0];
      }
      const size = parseLater(cmd, '--size <WxH>', o.size, (v) => {
        const m = /^(\d+)x(\d+)$/.exec(v);
        if (!m) throw new InvalidArgumentError('expected WIDTHxHEIGHT, e.g. 256x144');
        return { width: Number(m[1]), height: Number(m[2]) };
      });
      const precision = parseLater(cmd, '--precision <p>', o.precision, (v): PrecisionOption => {
        if (!(PRECISION_OPTIONS as readonly string[]).includes(v)) throw new InvalidArgumentError(`Allowed choices are ${PRECISION_OPTIONS.join(', ')}.`);
        return v as PrecisionOption;
      });
      const report = await runFlickerTable({
        contentDir: o.content, styles: parseList(o.styles), styleSize: o.styleSize, clips: o.clips, settings: flickerSettings(o.temporal, o.temporalBlend),
        frames: o.frames, width: size.width, height: size.height, model, precision,
        threads: o.threads, modelsDir: o.modelsDir, download: o.download, judgeFile: o.judge,
        progress: o.quiet ? undefined : (label, total) => createProgress(label, total),
        log: o.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      stdout.write((o.json ? JSON.stringify(report, null, 2) : formatFlickerTable(report)) + '\n');
    });
}
