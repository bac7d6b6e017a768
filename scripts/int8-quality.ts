/**
 * int8 vs fp32 on held-out pairs: PSNR per pair and the judge's distances, and with
 * --sensitivity the same with one conv at a time kept in float ("keep") or alone in int8
 * ("only"), to tell where the error comes from.
 *
 *   node --import tsx scripts/int8-quality.ts [--model cd16x-r41] [--contents 8] [--styles 4]
 *     [--size 256]
 *     [--content-files a.jpg,b.png] [--style-files c.jpg,...] [--diagonal 16] [--threads 1] [--calibration FILE] [--method percentile|minmax|mse[,decoder's]]
 *     [--float dec1_1,...|encoder|decoder|none] [--sensitivity] [--no-judge] [--int8-style] [--widen t[,t]]
 *     [--speed 512] [--set encoder.conv1_2=100,...] [--noise-floor] [--json FILE]
 *
 * --noise-floor adds, per pair, fp32 against fp32 on the content with uniform noise of half an
 * 8-bit level added (invisible, below what an 8-bit file stores): how much the float model itself
 * moves for the least change of its input, the scale against which int8's error is read.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Judge } from '../src/eval/judge.js';
import { readImage, resizeImage, type RgbImage } from '../src/image/io.js';
import { decoderLayers, encoderLayers } from '../src/models/architectures.js';
import { decoderWeights, encoderWeights } from '../src/models/canonical-weights.js';
import { findModel } from '../src/models/registry.js';
import { resolveWeightFile } from '../src/models/resolve.js';
import { calibrationPathFor, readCalibration, selectedRanges, type RangeMethod } from '../src/quant/calibrate.js';
import type { NetworkRanges, QuantSpec } from '../src/quant/qdq.js';
import { channelStats } from '../src/stylize/features.js';
import { styleStats, stylizeImage } from '../src/stylize/model.js';
import { Network } from '../src/stylize/network.js';
import { readWeights } from '../src/weights/index.js';
import { median, pseudoRandom, timeMs } from '../src/runtime/stats.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared');

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'cd16x-r41' },
    contents: { type: 'string', default: '8' },
    styles: { type: 'string', default: '4' },
    size: { type: 'string', default: '256' },
    threads: { type: 'string', default: '1' },
    calibration: { type: 'string' },
    method: { type: 'string' },
    float: { type: 'string' },
    sensitivity: { type: 'boolean', default: false },
    'no-judge': { type: 'boolean', default: false },
    'int8-style': { type: 'boolean', default: false },
    widen: { type: 'string' },
    speed: { type: 'string' },
    'content-files': { type: 'string' },
    diagonal: { type: 'string' },
    set: { type: 'string' },
    'style-files': { type: 'string' },
    json: { type: 'string' },
    'noise-floor': { type: 'boolean', default: false },
  },
});

/** `n` names spread evenly over a sorted folder listing (the same picks for the same n). */
export function spread(dir: string, n: number): string[] {
  const all = readdirSync(dir).filter((e) => !e.startsWith('.')).sort();
  return Array.from({ length: Math.min(n, all.length) }, (_, i) => all[Math.floor((i * all.length) / Math.min(n, all.length))]);
}

function psnr(a: RgbImage, b: RgbImage): number {
  let s = 0;
  const clamp = (v: number) => (v > 0 ? (v < 1 ? v : 1) : 0);
  for (let i = 0; i < a.data.length; i++) s += (clamp(a.data[i]) - clamp(b.data[i])) ** 2;
  return 10 * Math.log10(a.data.length / Math.max(s, 1e-20));
}

const spec = findModel(o.model!);
// the registry looks in the bundled models/ first, then in ../shared/models
const resolve = (w: Parameters<typeof resolveWeightFile>[0]) => resolveWeightFile(w, { modelsDir: path.join(SHARED, 'models'), download: false });
const encoderFile = await resolve(spec.encoder.weights);
const decoderFile = await resolve(spec.decoder.weights);
const { kind, cut } = spec.encoder;
const enc = encoderWeights(kind, cut, await readWeights(encoderFile), encoderFile);
const dec = decoderWeights(cut, await readWeights(decoderFile), decoderFile);
const calibration = await readCalibration(o.calibration ?? calibrationPathFor(decoderFile));
// --method m, or encoder,decoder methods (e.g. minmax,percentile) to vary one network at a time
const [encMethod, decMethod = encMethod] = (o.method ?? `${calibration.method},${calibration.decoderMethod ?? calibration.method}`).split(',') as RangeMethod[];
const base: QuantSpec = {
  encoder: { ...selectedRanges(calibration).encoder, ranges: calibration.ranges[encMethod].encoder },
  decoder: { ...selectedRanges(calibration).decoder, ranges: calibration.ranges[decMethod].decoder },
};
const extra = (o.float ?? '').split(',').filter(Boolean);
const withFloat = (q: QuantSpec, e: readonly string[], d: readonly string[]): QuantSpec => ({
  encoder: { ...q.encoder, float: [...(q.encoder.float ?? []), ...e] },
  decoder: { ...q.decoder, float: [...(q.decoder.float ?? []), ...d] },
});
const encNames = encoderLayers(cut, kind !== 'vgg19bn').filter((l) => l.kind === 'conv').map((l) => l.name).filter((n) => n !== 'conv0');
const decNames = decoderLayers(cut).filter((l) => l.kind === 'conv').map((l) => l.name);
// --widen t[,t]: ranges moved a fraction t from the selected ones towards minmax (clipping less)
const [wEnc, wDec = wEnc] = (o.widen ?? '0').split(',').map(Number);
const widen = (r: NetworkRanges, m: NetworkRanges, t: number): NetworkRanges =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { min: v.min + t * (m[k].min - v.min), max: v.max + t * (m[k].max - v.max) }]));
base.encoder.ranges = widen(base.encoder.ranges, calibration.ranges.minmax.encoder, wEnc);
base.decoder.ranges = widen(base.decoder.ranges, calibration.ranges.minmax.decoder, wDec);
// --set encoder.conv1_2=100,...: one range's max by hand, to test what a range costs
for (const kv of (o.set ?? '').split(',').filter(Boolean)) {
  const [k, v] = kv.split('='), [net, point] = k.split('.') as ['encoder' | 'decoder', string];
  base[net].ranges = { ...base[net].ranges, [point]: { ...base[net].ranges[point], max: Number(v) } };
}
// --float encoder / decoder keeps that whole network in float, to see the other's error alone
const floatsOf = (names: string[], net: string) => (extra.includes(net) ? names : extra.filter((n) => names.includes(n)));
// --float replaces the calibration's list (none: every conv int8)
const main = o.float === undefined ? base : withFloat({ encoder: { ...base.encoder, float: [] }, decoder: { ...base.decoder, float: [] } }, floatsOf(encNames, 'encoder'), floatsOf(decNames, 'decoder'));

const size = Number(o.size), threads = Number(o.threads);
const contents = o['content-files']?.split(',') ?? spread(path.join(SHARED, 'data/content/test'), Number(o.diagonal ?? o.contents));
const styles = o['style-files']?.split(',') ?? spread(path.join(SHARED, 'data/style/test'), Number(o.diagonal ?? o.styles));
const load = async (dir: string, f: string) => resizeImage(await readImage(path.join(SHARED, dir, f)), size, size);
const cImgs = await Promise.all(contents.map((c) => load('data/content/test', c)));
const sImgs = await Promise.all(styles.map((s) => load('data/style/test', s)));
// --diagonal n: n contents and n styles spread over the folders, the i-th with the i-th (test/int8.test.ts's pairs)
const pairs = o.diagonal
  ? contents.map((c, i) => ({ name: `${c} x ${styles[i]}`, content: cImgs[i], style: sImgs[i] }))
  : contents.flatMap((c, i) => styles.map((s, j) => ({ name: `${c} x ${s}`, content: cImgs[i], style: sImgs[j] })));

const fp32 = await Network.fromWeights(kind, cut, enc, dec, { threads });
const reference: RgbImage[] = [];
for (const p of pairs) reference.push(await stylizeImage(fp32, p.content, [p.style]));

async function psnrs(q: QuantSpec): Promise<{ outs: RgbImage[]; db: number[] }> {
  const net = await Network.fromWeights(kind, cut, enc, dec, { threads, int8: q });
  try {
    const outs: RgbImage[] = [];
    // --int8-style: style statistics from the int8 encoder (Network.encodeStyle uses the float one), to see what that saves
    for (const p of pairs) outs.push(await stylizeImage(net, p.content, [o['int8-style'] ? channelStats(await net.encodeAnySize(p.style)) : p.style]));
    return { outs, db: outs.map((x, i) => psnr(reference[i], x)) };
  } finally {
    await net.dispose();
  }
}
// --noise-floor: the content with +-half an 8-bit level of uniform noise (fixed seed per pair)
const floor: number[] = [];
if (o['noise-floor']) {
  for (const [i, p] of pairs.entries()) {
    const noise = pseudoRandom(p.content.data.length, 1000 + i);
    const noisy = { ...p.content, data: p.content.data.map((v, k) => v + (noise[k] - 0.5) / 255) };
    floor.push(psnr(reference[i], await stylizeImage(fp32, noisy, [p.style])));
  }
}
const floorCol = (i: number) => (floor.length ? `  ${floor[i].toFixed(2).padStart(8)}` : '');
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const summary = (db: number[]) => `min ${Math.min(...db).toFixed(2)} mean ${(sum(db) / db.length).toFixed(2)} dB, ${db.filter((x) => x < 32).length}/${db.length} under 32`;

console.log(`${spec.name} at ${size}px, calibration ${encMethod},${decMethod} (${calibration.pairs} pairs, ${calibration.created}), float: enc [${main.encoder.float?.join(',')}] dec [${main.decoder.float?.join(',')}]`);
const { outs, db } = await psnrs(main);
const report: Record<string, unknown> = { model: spec.name, size, method: calibration.method, float: { encoder: main.encoder.float, decoder: main.decoder.float }, ...(floor.length ? { noiseFloor: floor } : {}) };
if (!o['no-judge']) {
  const judge = await Judge.load({ file: path.join(SHARED, 'models/vgg19-normalised/vgg_normalised_conv3_1.pth'), threads });
  const rows = [];
  for (let i = 0; i < pairs.length; i++) {
    const ct = await judge.contentTarget(pairs[i].content), st = await judge.styleTarget(pairs[i].style);
    const a = await judge.measure(reference[i], ct, st), b = await judge.measure(outs[i], ct, st);
    rows.push({ name: pairs[i].name, psnr: db[i], style: [a.style, b.style], content: [a.content, b.content] });
  }
  await judge.dispose();
  const pct = (x: number, y: number) => `${y >= x ? '+' : ''}${(100 * (y / x - 1)).toFixed(2)}%`;
  console.log(`psnr_db${floor.length ? '  floor_db' : ''}  style_fp32 style_d  content_fp32 content_d  pair`);
  for (const [i, r] of rows.entries()) console.log(`${r.psnr.toFixed(2).padStart(6)}${floorCol(i)}  ${r.style[0].toFixed(4).padStart(10)} ${pct(r.style[0], r.style[1]).padStart(7)}  ${r.content[0].toFixed(4).padStart(12)} ${pct(r.content[0], r.content[1]).padStart(9)}  ${r.name}`);
  for (const k of ['style', 'content'] as const) {
    const a = sum(rows.map((r) => r[k][0])), b = sum(rows.map((r) => r[k][1]));
    console.log(`summed ${k} distance int8/fp32: ${(b / a).toFixed(4)} (${pct(a, b)})`);
  }
  report.pairs = rows;
} else {
  pairs.forEach((p, i) => console.log(`${db[i].toFixed(2).padStart(6)}${floorCol(i)}  ${p.name}`));
}
console.log(`PSNR: ${summary(db)}`);

if (o.sensitivity) {
  // keep: that conv in float, the rest int8; only: that conv alone in int8 (its input and output quantised)
  const rows: { layer: string; keep: number[]; only: number[] }[] = [];
  const both = [...encNames.map((n) => ['encoder', n] as const), ...decNames.map((n) => ['decoder', n] as const)];
  const allFloat = withFloat(main, encNames, decNames);
  for (const [net, n] of both) {
    const keep = await psnrs(withFloat(main, net === 'encoder' ? [n] : [], net === 'decoder' ? [n] : []));
    const others = (names: string[]) => names.filter((x) => x !== n);
    const only = await psnrs({
      encoder: { ...allFloat.encoder, float: net === 'encoder' ? others(encNames) : encNames },
      decoder: { ...allFloat.decoder, float: net === 'decoder' ? others(decNames) : decNames },
    });
    rows.push({ layer: `${net}.${n}`, keep: keep.db, only: only.db });
    console.log(`${`${net}.${n}`.padEnd(16)} keep-float: ${summary(keep.db)} | only-int8: ${summary(only.db)}`);
  }
  for (const [label, q] of [
    ['encoder int8 only', { encoder: main.encoder, decoder: { ...main.decoder, float: decNames } }],
    ['decoder int8 only', { encoder: { ...main.encoder, float: encNames }, decoder: main.decoder }],
  ] as const) {
    const r = await psnrs(q as QuantSpec);
    console.log(`${label.padEnd(18)}: ${summary(r.db)}`);
    rows.push({ layer: label, keep: r.db, only: [] });
  }
  report.sensitivity = rows;
}
if (o.speed) {
  // interleaved (machine noise hits every variant alike), medians: the ratios are what counts under load.
  // image: one stylisation with its style encode (a style of the content's size, as adain bench);
  // frame: style statistics cached (video, webcam), so content encode + AdaIN + decode;
  // image, int8 style: the style through the int8 encoder, as before Network.encodeStyle
  const side = Number(o.speed);
  const int8 = await Network.fromWeights(kind, cut, enc, dec, { threads, int8: main });
  const content = { width: side, height: side, data: pseudoRandom(3 * side * side, 1) };
  const style = { width: side, height: side, data: pseudoRandom(3 * side * side, 2) };
  const cached = new Map([[fp32, await styleStats(fp32, style)], [int8, await styleStats(int8, style)]]);
  const variants: [string, () => Promise<unknown>][] = [
    ['fp32 image', () => stylizeImage(fp32, content, [style])],
    ['int8 image', () => stylizeImage(int8, content, [style])],
    ['int8 image, int8 style', async () => stylizeImage(int8, content, [channelStats(await int8.encodeAnySize(style))])],
    ['fp32 frame', () => stylizeImage(fp32, content, [cached.get(fp32)!])],
    ['int8 frame', () => stylizeImage(int8, content, [cached.get(int8)!])],
  ];
  for (const [, run] of variants) await run();
  const ms = variants.map((): number[] => []);
  for (let i = 0; i < 7; i++) for (const [k, [, run]] of variants.entries()) ms[k].push(await timeMs(run));
  const med = Object.fromEntries(variants.map(([name], k) => [name, median(ms[k])]));
  for (const [name, m] of Object.entries(med)) console.log(`  ${name.padEnd(24)} ${m.toFixed(1)} ms`);
  const ratios = {
    image: med['fp32 image'] / med['int8 image'],
    imageInt8Style: med['fp32 image'] / med['int8 image, int8 style'],
    frame: med['fp32 frame'] / med['int8 frame'],
  };
  console.log(`speed at ${side}px, ${threads} thread(s), fp32/int8: image ${ratios.image.toFixed(2)}x (int8 style encode: ${ratios.imageInt8Style.toFixed(2)}x), frame ${ratios.frame.toFixed(2)}x`);
  report.speed = { side, ms: med, ratios };
  await int8.dispose();
}
if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 1));
await fp32.dispose();
