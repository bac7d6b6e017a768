import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { RgbImage } from '../image/io.js';
import { findModel, MODELS } from '../models/registry.js';
import { modelStatus, resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import { findCalibration } from '../quant/calibrate.js';
import { median } from '../runtime/stats.js';
import type { ChannelStats, FeatureMap } from '../stylize/features.js';
import type { Precision } from '../stylize/network.js';
import { checkTransform, type FeatureTransform } from '../stylize/model.js';
import { loadModel, type StyleModel } from '../stylize/style-model.js';
import { Cfsd } from './cfsd.js';
import { contactSheet, tableSheet } from './contact-sheet.js';
import { gridScore, periodicity } from './grid-score.js';
import { Judge, type Measurement, type StyleTarget } from './judge.js';
import { DEFAULT_OPTIMIZE_CONTENT_WEIGHT, DEFAULT_OPTIMIZE_LR, DEFAULT_OPTIMIZE_STYLE_WEIGHT, GatysOptimizer } from './optimize.js';
import { loadEvalSet, loadSquare, type EvalSet } from './pairs.js';

/**
 * `adain eval`: every model (and the references) on the same held-out pairs, judged by the
 * normalised VGG-19 (eval/judge.ts).
 *
 * - Pairs: `contents` x `styles` images chosen with a seeded generator from two folders
 *   (default the test split), all content x style pairs; each image resized so its shorter
 *   side is `size` and centre-cropped to size x size (eval/pairs.ts).
 * - Rows (pairs 'all'): `content-unchanged` (the content image as the output: the style
 *   distance of doing nothing, content distance 0), then each model.
 *   A model may run at a named precision (`NAME@int8`, `--precision fp32,int8`): the row is
 *   named so and carries `precision`, so the int8 network is judged on the very same pairs.
 * - Rows (pairs 'subset'): the same on a seeded subset of `optimizePairs` pairs, plus
 *   `optimize-<n>` for each iteration count (Gatys optimisation of the judge's own loss,
 *   content weight 1, style weight 10, Adam on the pixels from the content image) - like for
 *   like, since optimisation is too slow for every pair.
 * - Distances are means over the pairs of the row's set: style and content distance (the
 *   judge), cfsd (eval/cfsd.ts: the content's self-similarity structure lost) and grid_score
 *   (eval/grid-score.ts: periodic energy at 2, 4, 8 px beyond the content's and style's).
 * - ms_512: median wall time of one stylisation of a 512x512 content with a 512x512 style
 *   (style encoding included, as `adain stylize` does), after one warm-up run; 0 for
 *   content-unchanged; for optimize-<n>: the measured time of one iteration at 512x512
 *   (after a warm-up iteration) times n. null when timing is off (speedRuns 0).
 */
export interface EvalEntry {
  /** Row name. */
  name: string;
  /** Registry model providing the encoder (and the decoder unless `decoder` is given). */
  model: string;
  /** A decoder weights file instead of the model's. */
  decoder?: string;
  /** fp32 or int8 (needs a calibration: `adain calibrate`); unset: fp32, and the row has no precision field. */
  precision?: Precision;
  /** adain (unset) or wct (stylize/wct.ts): how the content features take the style. */
  transform?: FeatureTransform;
}

export interface EvalConfig {
  contentDir: string;
  styleDir: string;
  contents: number;
  styles: number;
  seed: number;
  /** Evaluation image side (a multiple of 8, at least 16). */
  size: number;
  /** Models to evaluate; default: every registry model whose files are on disk. */
  models?: EvalEntry[];
  /** Pairs in the optimisation subset; 0 skips the optimisation references. */
  optimizePairs: number;
  /** Iteration counts reported for the optimisation (one run to the largest, snapshots on the way). */
  optimizeIterations: number[];
  optimizeLr?: number;
  contentWeight?: number;
  styleWeight?: number;
  /** Timed runs for ms_512 (median); 0: no timing, ms_512 is null. */
  speedRuns: number;
  /** The content/style trade-off every model row is stylised with, as `stylize --alpha` (default 1). */
  alpha?: number;
  /** Folder for the contact sheets and results.json; undefined: write nothing. */
  out?: string;
  sheetContents: number;
  sheetStyles: number;
  thumb: number;
  threads?: number;
  modelsDir?: string;
  judgeFile?: string;
  download?: boolean;
  /** Progress of a stage; the returned object is updated and stopped by the run. */
  progress?: (label: string, total: number) => { update(done: number): void; stop(): void };
  /** Messages for the user (loading, files written). */
  log?: (line: string) => void;
}

export type PairSet = 'all' | 'subset';

export interface EvalRow {
  model: string;
  pairs: PairSet;
  style_distance: number;
  content_distance: number;
  cfsd: number;
  grid_score: number;
  ms_512: number | null;
  /** Set on the rows of entries that named a precision (NAME@int8, --precision). */
  precision?: Precision;
  /** Set on the rows of wct entries (--transform). */
  transform?: FeatureTransform;
}

export interface EvalReport {
  rows: EvalRow[];
  /** What each row name is, for the table. */
  notes: Record<string, string>;
  size: number;
  seed: number;
  contents: string[];
  styles: string[];
  subset: { content: string; style: string }[];
  /** Files written into `out`. */
  files: string[];
}

export const CONTENT_UNCHANGED = 'content-unchanged';
const OPTIMIZE_ROW_PREFIX = 'optimize-';
export const optimizeRowName = (iterations: number): string => `${OPTIMIZE_ROW_PREFIX}${iterations}`;
/** The iteration count of an optimize-<n> row name; null for any other row. */
function optimizeRowIterations(name: string): number | null {
  const m = new RegExp(`^${OPTIMIZE_ROW_PREFIX}(\\d+)$`).exec(name);
  return m ? Number(m[1]) : null;
}
const SPEED_SIZE = 512;

/** Registry models whose weight files are all on disk (no download, no hashing). */
export async function availableModels(opts: Pick<ResolveOptions, 'modelsDir' | 'cacheDir'> = {}): Promise<EvalEntry[]> {
  const out: EvalEntry[] = [];
  for (const spec of MODELS) {
    const status = await modelStatus(spec, opts);
    if (status.every((s) => s.localPath !== null && s.problem === null)) out.push({ name: spec.name, model: spec.name });
  }
  return out;
}

/** `NAME=MODEL:FILE`: a decoder file evaluated with MODEL's encoder, in a row named NAME. */
export function parseDecoderEntry(text: string): EvalEntry {
  const m = /^([^=]+)=([^:]+):(.+)$/.exec(text.trim());
  if (!m) throw new UserError(`--decoder ${JSON.stringify(text)}: expected NAME=MODEL:FILE, e.g. mine=cd16x-r41:runs/cd16x/decoder.safetensors`);
  findModel(m[2]);
  return { name: m[1].trim(), model: m[2].trim(), decoder: m[3] };
}

export const EVAL_PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

function checkPrecision(p: string, what: string): Precision {
  if (!(EVAL_PRECISIONS as readonly string[]).includes(p)) {
    // auto is left out on purpose: its choice follows this CPU's timing, so a row would not say what it measured
    throw new UserError(`${what}: unknown precision ${JSON.stringify(p)}; use fp32 or int8 (auto is not evaluated: it picks one by timing this CPU)`);
  }
  return p as Precision;
}

/** `NAME` or `NAME@fp32` / `NAME@int8` (--models): a registry model, its row named as given (the registry's spelling). */
export function parseModelSpec(text: string): EvalEntry {
  const m = /^([^@]+)(?:@(.*))?$/.exec(text.trim());
  if (!m) throw new UserError(`--models ${JSON.stringify(text)}: expected NAME or NAME@fp32 / NAME@int8, e.g. cd16x-r41@int8`);
  const name = findModel(m[1].trim()).name;
  if (m[2] === undefined) return { name, model: name };
  const precision = checkPrecision(m[2].trim(), `--models ${text}`);
  return { name: `${name}@${precision}`, model: name, precision };
}

/** --precision fp32,int8 as a list (a typo is refused here, before anything loads). */
export function parsePrecisionList(text: string): Precision[] {
  const list = text.split(',').map((p) => p.trim()).filter(Boolean).map((p) => checkPrecision(p, `--precision ${text}`));
  if (!list.length) throw new UserError('--precision: expected fp32, int8 or fp32,int8');
  return [...new Set(list)];
}

/** Each entry that names no precision once per precision, as row NAME@PRECISION; entries with one stay as they are. */
export function withPrecisions(entries: readonly EvalEntry[], precisions: readonly Precision[] | undefined): EvalEntry[] {
  const out = entries.flatMap((e) => (e.precision || !precisions?.length ? [e] : precisions.map((p) => ({ ...e, name: `${e.name}@${p}`, precision: p }))));
  // `-m a,a@int8 --precision int8` names the same row twice: one run of it is meant
  const seen = new Set<string>();
  return out.filter((e) => {
    const key = JSON.stringify([e.name, e.model, e.decoder, e.precision]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** --transform adain,wct as a list (a typo is refused here, before anything loads). */
export function parseTransformList(text: string): FeatureTransform[] {
  const list = text.split(',').map((t) => t.trim()).filter(Boolean).map(checkTransform);
  if (!list.length) throw new UserError('--transform: expected adain, wct or adain,wct');
  return [...new Set(list)];
}

/** Each entry once per transform: adain keeps the row as it is, wct adds NAME+wct. */
export function withTransforms(entries: readonly EvalEntry[], transforms: readonly FeatureTransform[] | undefined): EvalEntry[] {
  if (!transforms?.length) return [...entries];
  return entries.flatMap((e) => transforms.map((t) => (t === 'adain' ? e : { ...e, name: `${e.name}+${t}`, transform: t })));
}

/** Whether an int8 entry's encoder + decoder files have a calibration (the files are resolved, downloaded if allowed). */
export async function hasCalibration(e: EvalEntry, opts: Pick<ResolveOptions, 'modelsDir' | 'cacheDir' | 'download'> = {}): Promise<{ found: boolean; decoderFile: string }> {
  const spec = findModel(e.model);
  const encoderFile = await resolveWeightFile(spec.encoder.weights, opts);
  const decoderFile = e.decoder ?? (await resolveWeightFile(spec.decoder.weights, opts));
  return { found: (await findCalibration(encoderFile, decoderFile, opts)).found, decoderFile };
}

export function checkEvalSize(size: number): void {
  if (!Number.isInteger(size) || size % 8 !== 0 || size < 16) throw new UserError(`--size must be a multiple of 8 and at least 16, got ${size}`);
}

interface Scores { style: Float64Array; content: Float64Array; cfsd: Float64Array; grid: Float64Array }

const newScores = (n: number, fill = 0): Scores => ({
  style: new Float64Array(n).fill(fill), content: new Float64Array(n).fill(fill), cfsd: new Float64Array(n).fill(fill), grid: new Float64Array(n).fill(fill),
});

export async function runEval(cfg: EvalConfig): Promise<EvalReport> {
  checkEvalSize(cfg.size);
  const log = cfg.log ?? (() => undefined);
  const progress = cfg.progress ?? (() => ({ update: () => undefined, stop: () => undefined }));
  const runtime = { threads: cfg.threads };
  const resolve = { modelsDir: cfg.modelsDir, download: cfg.download };
  const entries = cfg.models ?? (await availableModels(resolve));
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name) || e.name === CONTENT_UNCHANGED || e.name.startsWith(OPTIMIZE_ROW_PREFIX)) throw new UserError(`model row name "${e.name}" is used twice or reserved; give each --decoder its own NAME`);
    names.add(e.name);
  }
  const iterations = [...new Set(cfg.optimizeIterations)].sort((a, b) => a - b);
  if (iterations.some((n) => !Number.isInteger(n) || n < 1)) throw new UserError(`optimisation iteration counts must be positive integers, got ${cfg.optimizeIterations.join(',')}`);
  // an int8 row without a calibration would fail after every row before it was computed
  for (const e of entries.filter((x) => x.precision === 'int8')) {
    const { found, decoderFile } = await hasCalibration(e, resolve);
    if (!found) {
      const spec = findModel(e.model);
      throw new UserError(`${e.name}: no int8 calibration for ${decoderFile}; run \`adain calibrate --model ${spec.name}${e.decoder ? ` --decoder ${e.decoder}` : ''}\` once, or evaluate it at fp32`);
    }
  }

  const set = await loadEvalSet(cfg.contentDir, cfg.styleDir, { contents: cfg.contents, styles: cfg.styles, seed: cfg.seed, subset: iterations.length ? cfg.optimizePairs : 0 });
  const C = set.contents.length, S = set.styles.length, P = C * S;
  log(`Evaluating ${C} contents x ${S} styles at ${cfg.size}x${cfg.size}` + (set.subset.length ? `; optimisation references on ${set.subset.length} of the pairs` : ''));

  const judge = await Judge.load({ ...runtime, ...resolve, file: cfg.judgeFile });
  const notes: Record<string, string> = { [CONTENT_UNCHANGED]: 'reference: the content image as the output' };
  const scores = new Map<string, Scores>();
  const speed = new Map<string, number | null>();
  const sheetC = Math.min(cfg.sheetContents, C), sheetS = Math.min(cfg.sheetStyles, S);
  const inSheet = (c: number, s: number) => cfg.out !== undefined && c < sheetC && s < sheetS;
  const subsetIndex = new Map(set.subset.map(([c, s], i) => [c * S + s, i]));
  const keep = (c: number, s: number) => inSheet(c, s) || (cfg.out !== undefined && subsetIndex.has(c * S + s));
  const kept = new Map<string, Map<number, RgbImage>>();
  let cfsd: Cfsd | undefined;

  try {
    const bar = progress('Loading images', C + S);
    const contents: RgbImage[] = [], contentFeats: FeatureMap[] = [], contentPeriodicity: number[] = [];
    for (const f of set.contents) {
      const img = await loadSquare(f, cfg.size);
      contents.push(img);
      contentFeats.push(await judge.contentTarget(img));
      contentPeriodicity.push(periodicity(img));
      bar.update(contents.length);
    }
    const styles: RgbImage[] = [], styleTargets: StyleTarget[] = [], stylePeriodicity: number[] = [];
    for (const f of set.styles) {
      const img = await loadSquare(f, cfg.size);
      styles.push(img);
      styleTargets.push(await judge.styleTarget(img));
      stylePeriodicity.push(periodicity(img));
      bar.update(C + styles.length);
    }
    bar.stop();
    const f3 = contentFeats[0];
    cfsd = await Cfsd.create(f3.c, f3.h, f3.w, runtime);
    const judgeAll = async (sc: Scores, out: RgbImage, c: number, s: number): Promise<void> => {
      const m: Measurement = await judge.measure(out, contentFeats[c], styleTargets[s]);
      const i = c * S + s;
      sc.style[i] = m.style;
      sc.content[i] = m.content;
      sc.cfsd[i] = await cfsd!.distance(m.features, contentFeats[c]);
      sc.grid[i] = gridScore(out, contentPeriodicity[c], stylePeriodicity[s]);
    };

    const record = async (name: string, produce: (c: number, s: number) => Promise<RgbImage>): Promise<void> => {
      const sc = newScores(P);
      const keepers = new Map<number, RgbImage>();
      const b = progress(`Judging ${name}`, P);
      for (let c = 0; c < C; c++) {
        for (let s = 0; s < S; s++) {
          const out = await produce(c, s);
          await judgeAll(sc, out, c, s);
          if (keep(c, s)) keepers.set(c * S + s, out);
          b.update(c * S + s + 1);
        }
      }
      b.stop();
      scores.set(name, sc);
      kept.set(name, keepers);
    };

    await record(CONTENT_UNCHANGED, async (c) => contents[c]);
    speed.set(CONTENT_UNCHANGED, cfg.speedRuns > 0 ? 0 : null);

    let speedPair: { content: RgbImage; style: RgbImage } | undefined;
    const speedImages = async () => (speedPair ??= { content: await loadSquare(set.contents[0], SPEED_SIZE), style: await loadSquare(set.styles[0], SPEED_SIZE) });

    for (const e of entries) {
      log(`Loading ${e.name}`);
      const model = await loadModel(e.model, { ...runtime, ...resolve, decoder: e.decoder, precision: e.precision });
      const spec = findModel(e.model);
      notes[e.name] = (e.decoder
        ? `decoder ${e.decoder} on the ${e.model} encoder`
        : `${spec.decoder.kind === 'reconstruction' ? 'reference: reconstruction decoder' : 'AdaIN decoder'} (${spec.encoder.kind} to ${spec.encoder.cut})`)
        + (e.precision ? `, ${model.network.precision}` : '') + (e.transform ? `, ${e.transform}` : '') + (cfg.alpha !== undefined && cfg.alpha !== 1 ? `, alpha ${cfg.alpha}` : '');
      try {
        const stats: ChannelStats[] = [];
        for (const st of styles) stats.push(await model.styleStats(st, { styleSize: cfg.size, transform: e.transform }));
        await record(e.name, (c, s) => model.stylizeToImage(contents[c], [stats[s]], { styleSize: cfg.size, transform: e.transform, alpha: cfg.alpha }));
        speed.set(e.name, cfg.speedRuns > 0 ? await timeModel(model, await speedImages(), cfg.speedRuns, e.transform) : null);
      } finally {
        await model.dispose();
      }
    }

    if (set.subset.length && iterations.length) {
      const lr = cfg.optimizeLr ?? DEFAULT_OPTIMIZE_LR;
      const weights = { contentWeight: cfg.contentWeight ?? DEFAULT_OPTIMIZE_CONTENT_WEIGHT, styleWeight: cfg.styleWeight ?? DEFAULT_OPTIMIZE_STYLE_WEIGHT };
      const last = iterations[iterations.length - 1];
      for (const n of iterations) {
        notes[optimizeRowName(n)] = `reference: Gatys optimisation, ${n} Adam steps (lr ${lr}) on the pixels, content weight ${weights.contentWeight}, style weight ${weights.styleWeight}`;
        scores.set(optimizeRowName(n), newScores(P, NaN));
        kept.set(optimizeRowName(n), new Map());
      }
      const opt = await GatysOptimizer.create({ weights: judge.weights, width: cfg.size, height: cfg.size, ...weights }, runtime);
      try {
        const b = progress('Optimising', set.subset.length * last);
        for (const [k, [c, s]] of set.subset.entries()) {
          const res = await opt.run(contents[c], contentFeats[c], styleTargets[s], {
            iterations: last, lr, snapshots: iterations, onIteration: (i) => b.update(k * last + i),
          });
          for (const n of iterations) {
            const img = res.snapshots.get(n)!;
            await judgeAll(scores.get(optimizeRowName(n))!, img, c, s);
            if (keep(c, s)) kept.get(optimizeRowName(n))!.set(c * S + s, img);
          }
        }
        b.stop();
      } finally {
        await opt.dispose();
      }
      if (cfg.speedRuns > 0) {
        const perIteration = await timeOptimizer(judge, await speedImages(), weights, lr, runtime);
        for (const n of iterations) speed.set(optimizeRowName(n), perIteration * n);
      } else {
        for (const n of iterations) speed.set(optimizeRowName(n), null);
      }
    }

    const rows: EvalRow[] = [];
    const allPairs = Array.from({ length: P }, (_, i) => i);
    const subsetPairs = set.subset.map(([c, s]) => c * S + s);
    const precisionOf = new Map(entries.map((e) => [e.name, e.precision]));
    const transformOf = new Map(entries.map((e) => [e.name, e.transform]));
    const row = (name: string, pairs: PairSet, idx: number[]): EvalRow => {
      const sc = scores.get(name)!;
      const avg = (xs: Float64Array) => mean(idx.map((i) => xs[i]));
      const precision = precisionOf.get(name), transform = transformOf.get(name);
      return {
        model: name, pairs, style_distance: avg(sc.style), content_distance: avg(sc.content), cfsd: avg(sc.cfsd), grid_score: avg(sc.grid),
        ms_512: speed.get(name) ?? null, ...(precision ? { precision } : {}), ...(transform ? { transform } : {}),
      };
    };
    const modelNames = [CONTENT_UNCHANGED, ...entries.map((e) => e.name)];
    for (const n of modelNames) rows.push(row(n, 'all', allPairs));
    if (subsetPairs.length) {
      for (const n of modelNames) rows.push(row(n, 'subset', subsetPairs));
      for (const n of iterations) rows.push(row(optimizeRowName(n), 'subset', subsetPairs));
    }

    const report: EvalReport = {
      rows, notes, size: cfg.size, seed: cfg.seed, contents: set.contents, styles: set.styles,
      subset: set.subset.map(([c, s]) => ({ content: set.contents[c], style: set.styles[s] })), files: [],
    };
    if (cfg.out !== undefined) await writeOutputs(cfg, report, set, contents, styles, entries.map((e) => e.name), iterations.map(optimizeRowName), kept, sheetC, sheetS);
    for (const f of report.files) log(`Wrote ${f}`);
    return report;
  } finally {
    await cfsd?.dispose();
    await judge.dispose();
  }
}

async function writeOutputs(
  cfg: EvalConfig, report: EvalReport, set: EvalSet, contents: RgbImage[], styles: RgbImage[],
  models: string[], optimizeRows: string[], kept: Map<string, Map<number, RgbImage>>, sheetC: number, sheetS: number,
): Promise<void> {
  const out = cfg.out!;
  await fs.mkdir(out, { recursive: true });
  const S = set.styles.length;
  if (sheetC > 0 && sheetS > 0 && models.length > 0) {
    const file = path.join(out, 'contact-sheet.png');
    await contactSheet(file, {
      contents: contents.slice(0, sheetC), styles: styles.slice(0, sheetS), models, thumb: cfg.thumb,
      outputs: (c, s) => models.map((m) => kept.get(m)!.get(c * S + s)!),
    });
    report.files.push(file);
  }
  const optimized = optimizeRows.filter((r) => kept.has(r));
  if (set.subset.length && optimized.length) {
    const file = path.join(out, 'optimize-sheet.png');
    const headers = ['content', 'style', ...models, ...optimized];
    await tableSheet(file, headers, set.subset.map(([c, s]) => [
      contents[c], styles[s], ...[...models, ...optimized].map((m) => kept.get(m)!.get(c * S + s)),
    ]), cfg.thumb);
    report.files.push(file);
  }
  const json = path.join(out, 'results.json');
  const tmp = `${json}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify({ ...report, files: undefined }, null, 2) + '\n');
  await fs.rename(tmp, json);
  report.files.push(json);
}

/** Median ms of a full 512x512 stylisation (style encoding included), after one warm-up. */
async function timeModel(model: StyleModel, pair: { content: RgbImage; style: RgbImage }, runs: number, transform?: FeatureTransform): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    await model.stylizeToImage(pair.content, pair.style, { styleSize: SPEED_SIZE, transform });
    return performance.now() - t0;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  return median(times);
}

/** ms of one optimisation iteration at 512x512 (graph run + Adam step), after a warm-up iteration. */
async function timeOptimizer(judge: Judge, pair: { content: RgbImage; style: RgbImage }, weights: { contentWeight: number; styleWeight: number }, lr: number, runtime: { threads?: number }): Promise<number> {
  const opt = await GatysOptimizer.create({ weights: judge.weights, width: SPEED_SIZE, height: SPEED_SIZE, ...weights }, runtime);
  try {
    const content = await judge.contentTarget(pair.content);
    const style = await judge.styleTarget(pair.style);
    await opt.run(pair.content, content, style, { iterations: 1, lr });
    return (await opt.run(pair.content, content, style, { iterations: 2, lr })).msPerIteration;
  } finally {
    await opt.dispose();
  }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Where each model's subset style distance falls on the optimisation curve: the most
 * iterations it matches or beats and the fewest that beat it (null past either end).
 * The optimiser starts from the content image, so it passes the content-unchanged distance
 * at iteration 0.
 */
export function optimizationEquivalents(report: EvalReport): { model: string; styleDistance: number; atLeast: EvalRow | null; below: EvalRow | null }[] {
  const curve = report.rows.filter((r) => r.pairs === 'subset' && optimizeRowIterations(r.model) !== null)
    .sort((a, b) => optimizeRowIterations(a.model)! - optimizeRowIterations(b.model)!);
  if (!curve.length) return [];
  return report.rows.filter((r) => r.pairs === 'subset' && r.model !== CONTENT_UNCHANGED && !curve.includes(r)).map((r) => {
    const beaten = curve.filter((o) => o.style_distance >= r.style_distance);
    const better = curve.filter((o) => o.style_distance < r.style_distance);
    return { model: r.model, styleDistance: r.style_distance, atLeast: beaten.at(-1) ?? null, below: better[0] ?? null };
  });
}

/** The optimisation equivalents as text lines (empty without optimisation rows). */
function formatEquivalents(report: EvalReport): string[] {
  const eq = optimizationEquivalents(report);
  if (!eq.length) return [];
  const point = (r: EvalRow) => `${r.model} (${fmt(r.style_distance)})`;
  return ['', `Style distance on the ${report.subset.length}-pair subset against the optimisation curve:`, ...eq.map((e) => {
    const where = e.atLeast && e.below ? `between ${point(e.atLeast)} and ${point(e.below)}`
      : e.below ? `above ${point(e.below)}, the fewest iterations measured`
        : `at or below ${point(e.atLeast!)}, the most iterations measured`;
    return `  ${e.model}: ${fmt(e.styleDistance)}, ${where}`;
  })];
}

/** The rows as an aligned text table, then where each model falls on the optimisation curve. */
export function formatTable(report: EvalReport): string {
  const head = ['model', 'pairs', 'style distance', 'content distance', 'cfsd', 'grid score', 'ms @512', 'what'];
  const cells = report.rows.map((r) => [
    r.model, r.pairs === 'all' ? `all ${report.contents.length * report.styles.length}` : `subset ${report.subset.length}`,
    fmt(r.style_distance), fmt(r.content_distance), fmt(r.cfsd), fmt(r.grid_score), r.ms_512 === null ? '-' : r.ms_512.toFixed(0), report.notes[r.model] ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const numeric = (i: number) => i >= 2 && i < head.length - 1;
  const line = (c: string[]) => c.map((x, i) => (numeric(i) ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), ...formatEquivalents(report)].join('\n');
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  return Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4);
}
