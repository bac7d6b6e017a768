/**
 * Activation ranges for the int8 graphs (quant/qdq.ts): measured by running the float graphs,
 * with every tensor the int8 graph quantises as an output, on training photos paired with many
 * styles (the decoder's input is AdaIN's output, whose range follows the style statistics),
 * and stored as a small JSON file beside the decoder (or in the cache when that folder is not
 * writable), tied to the exact encoder and decoder files by sha256.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.js';
import { hasImageExtension, readImage, resizeImage, type RgbImage } from '../image/io.js';
import { decoderLayers, encoderLayers, type ConvLayer, type CutLayer, type Layer } from '../models/architectures.js';
import type { ConvWeights, EncoderKind } from '../models/canonical-weights.js';
import { cacheRoot } from '../models/resolve.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { adain, channelStats } from '../stylize/features.js';
import { INPUT_POINT, probeModel, u8Params, type ActivationRange, type ChannelScales, type NetworkRanges, type QuantSpec } from './qdq.js';

export const CALIBRATION_FORMAT = 'adain-calibration';
export const CALIBRATION_VERSION = 1;

/** How the stored ranges were reduced from the samples. */
export type RangeMethod = 'minmax' | 'percentile' | 'mse';
export const RANGE_METHODS: readonly RangeMethod[] = ['minmax', 'percentile', 'mse'];

export interface NetworkPairRanges { encoder: NetworkRanges; decoder: NetworkRanges }

/** The JSON file. Both reductions are stored, so switching `method` needs no recalibration. */
export interface Calibration {
  format: typeof CALIBRATION_FORMAT;
  version: number;
  model: string;
  encoder: { file: string; sha256: string };
  decoder: { file: string; sha256: string };
  /** Which of `ranges` the int8 graphs use (the encoder's, and the decoder's unless `decoderMethod` says otherwise). */
  method: RangeMethod;
  decoderMethod?: RangeMethod;
  /** Conv layers kept in float (see qdq.ts NetworkQuant.float); none when absent. */
  float?: { encoder: string[]; decoder: string[] };
  /** The percentile of the `percentile` ranges (e.g. 99.99: the top 0.01% of values clip). */
  percentile: number;
  pairs: number;
  size: number;
  created: string;
  /** Channel equalisation (see qdq.ts ChannelScales); the ranges are those of the equalised networks. */
  equalization: { alpha: number; encoder: ChannelScales; decoder: ChannelScales };
  ranges: Record<RangeMethod, NetworkPairRanges>;
}

export const DEFAULT_PERCENTILE = 99.99;
export const DEFAULT_METHOD: RangeMethod = 'percentile';
/**
 * The decoder's input is AdaIN's output, whose range follows the style: a fixed percentile clips
 * high-contrast styles or wastes steps on tame ones; the least-error clipping point did best on
 * the held-out pairs (scripts/int8-quality.ts).
 */
export const DEFAULT_DECODER_METHOD: RangeMethod = 'mse';
export const DEFAULT_CALIBRATION_SIZE = 256;
export const DEFAULT_CALIBRATION_CONTENTS = 32;
export const DEFAULT_CALIBRATION_STYLES = 64;

/** What the int8 graphs of a calibration use. */
export function selectedRanges(c: Calibration): QuantSpec {
  return {
    encoder: { ranges: c.ranges[c.method].encoder, scales: c.equalization.encoder, float: c.float?.encoder ?? [] },
    decoder: { ranges: c.ranges[c.decoderMethod ?? c.method].decoder, scales: c.equalization.decoder, float: c.float?.decoder ?? [] },
  };
}

/**
 * The convs kept in float unless told otherwise: by role, so that every model gets the same
 * choice. Measured on cd16x-r41 (scripts/int8-quality.ts --sensitivity): the first encoder conv
 * (its error, and the input's, runs through every later layer; 3 input channels make it cheap)
 * and the last (its output is the features AdaIN normalises per channel, where one u8 step
 * weighs most in the quietest channels; at the encoder's smallest resolution it is cheap: ~1 ms
 * of cd16x-r41's 512x512 frame, for a mean PSNR 35.9 -> 36.6 dB on 16 test pairs);
 * in the decoder, the first conv (its input is AdaIN's output, whose range depends on the style)
 * and the last (3 output channels: cheap). The first conv after the first pool was float too
 * while styles went through the int8 encoder; with their statistics from the float one
 * (Network.encodeStyle) keeping it float no longer helps any pair, so it runs in int8.
 * Narrow decoder convs at the output's resolution (at most NARROW_FLOAT_CHANNELS in and out)
 * are float as well: onnxruntime's QLinearConv is no faster there than its float NCHWc conv
 * (cd16x-r41's 16-channel dec1_2 at 512: 3.6 ms either way), while the u8 upsample before it
 * is slower than the float one, so in float they cost nothing and lose no precision.
 */
export function defaultFloatLayers(encLayers: readonly Layer[], decLayers: readonly Layer[], dec?: ConvWeights): { encoder: string[]; decoder: string[] } {
  const convs = (ls: readonly Layer[]) => ls.filter((l): l is ConvLayer => l.kind === 'conv');
  // the input conv (1x1, no ReLU) is folded into the next one (qdq.ts foldInputConv): its neighbour is the first
  const enc = convs(encLayers).filter((l) => !(l.k === 1 && !l.relu));
  const decConvs = convs(decLayers);
  const lastUp = decLayers.map((l) => l.kind).lastIndexOf('up');
  const narrow = dec ? convs(decLayers.slice(lastUp + 1)).filter((l) => {
    const shape = dec.get(l.name)?.weight.shape;
    return shape !== undefined && shape[0] <= NARROW_FLOAT_CHANNELS && shape[1] <= NARROW_FLOAT_CHANNELS;
  }) : [];
  return {
    encoder: enc.length > 2 ? [enc[0].name, enc.at(-1)!.name] : enc.length > 1 ? [enc[0].name] : [],
    decoder: decConvs.filter((l) => l === decConvs[0] || l === decConvs.at(-1) || narrow.includes(l)).map((l) => l.name),
  };
}

/** See defaultFloatLayers. */
export const NARROW_FLOAT_CHANNELS = 16;

/** `x/cd16x-r41.decoder.safetensors` -> `x/cd16x-r41.calibration.json`; `x/decoder.pth` -> `x/decoder.calibration.json`. */
export function calibrationPathFor(decoderFile: string): string {
  const dir = path.dirname(decoderFile);
  let stem = path.basename(decoderFile).replace(/\.(safetensors|pth|pt|ckpt|bin)$/i, '');
  if (stem.endsWith('.decoder')) stem = stem.slice(0, -'.decoder'.length);
  return path.join(dir, `${stem}.calibration.json`);
}

/** Where a calibration goes when the decoder's folder is not writable: keyed by the decoder's hash. */
export function cachedCalibrationPath(decoderSha256: string, opts: { cacheDir?: string } = {}): string {
  return path.join(cacheRoot(opts), 'calibration', `${decoderSha256}.json`);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function parseCalibration(text: string, file: string): Calibration {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message}); delete it and run \`adain calibrate\` again`);
  }
  const bad = (why: string) => new UserError(`${file}: not an adain calibration file (${why}); delete it and run \`adain calibrate\` again`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const c = v as Partial<Calibration>;
  if (c.format !== CALIBRATION_FORMAT) throw bad(`format is ${JSON.stringify(c.format)}`);
  if (c.version !== CALIBRATION_VERSION) throw bad(`version ${c.version}, this adain reads ${CALIBRATION_VERSION}`);
  if (!RANGE_METHODS.includes(c.method as RangeMethod)) throw bad(`method ${JSON.stringify(c.method)}`);
  if (c.decoderMethod !== undefined && !RANGE_METHODS.includes(c.decoderMethod)) throw bad(`decoderMethod ${JSON.stringify(c.decoderMethod)}`);
  if (c.float !== undefined && !(['encoder', 'decoder'] as const).every((n) => Array.isArray(c.float?.[n]) && c.float[n].every((x) => typeof x === 'string'))) throw bad('float is not two lists of layer names');
  if (typeof c.encoder?.sha256 !== 'string' || typeof c.decoder?.sha256 !== 'string') throw bad('no weight hashes');
  for (const net of ['encoder', 'decoder'] as const) {
    const e = c.equalization?.[net];
    if (!e || typeof e !== 'object') throw bad(`no ${net} equalisation`);
    for (const [k, s] of Object.entries(e)) if (!Array.isArray(s) || !s.every((x) => Number.isFinite(x) && x > 0)) throw bad(`${net} equalisation of ${k}`);
  }
  for (const m of RANGE_METHODS) {
    for (const net of ['encoder', 'decoder'] as const) {
      const r = c.ranges?.[m]?.[net];
      if (!r || typeof r !== 'object' || !(INPUT_POINT in r)) throw bad(`no ${m} ${net} ranges`);
      for (const [k, x] of Object.entries(r)) {
        if (!Number.isFinite(x?.min) || !Number.isFinite(x?.max) || x.min > x.max) throw bad(`${m} ${net} range of ${k}`);
      }
    }
  }
  return c as Calibration;
}

export async function readCalibration(file: string): Promise<Calibration> {
  return parseCalibration(await fs.readFile(file, 'utf8'), file);
}

/** float32 holds about 7 significant digits; more in the file would only be noise. */
function roundNumbers<T>(x: T): T {
  return JSON.parse(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(7)) : v))) as T;
}

/** Temp file + rename: a reader never sees half a file. Arrays of numbers go on one line, to keep the file small and diffable by key. */
export async function writeCalibration(file: string, c: Calibration): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const text = JSON.stringify(c, null, 1).replace(/\[[-\d.e+,\s]*\]/g, (a) => a.replace(/\s+/g, ''));
  await fs.writeFile(tmp, text + '\n');
  await fs.rename(tmp, file);
}

export type CalibrationLookup =
  | { found: true; calibration: Calibration; file: string }
  | { found: false; looked: string[]; stale: string[] };

/**
 * The calibration of this encoder + decoder pair: beside the decoder, then in the cache. A file
 * made for other weights (hash mismatch) does not count: it is reported as stale.
 */
export async function findCalibration(encoderFile: string, decoderFile: string, opts: { cacheDir?: string } = {}): Promise<CalibrationLookup> {
  const [encSha, decSha] = await Promise.all([sha256File(encoderFile), sha256File(decoderFile)]);
  const candidates = [calibrationPathFor(decoderFile), cachedCalibrationPath(decSha, opts)];
  const stale: string[] = [];
  for (const file of candidates) {
    let c: Calibration;
    try {
      c = await readCalibration(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (c.encoder.sha256 === encSha && c.decoder.sha256 === decSha) return { found: true, calibration: c, file };
    stale.push(file);
  }
  return { found: false, looked: candidates, stale };
}

/** Collects the values of one tensor over many runs: exact min and max plus a strided sample for percentiles. */
class RangeSampler {
  min = Infinity;
  max = -Infinity;
  private readonly samples: number[] = [];
  constructor(private readonly perRun = 20000) {}

  add(data: Float32Array): void {
    let lo = this.min, hi = this.max;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo; this.max = hi;
    // an odd stride walks across channels and rows instead of along one of them
    const stride = Math.max(1, Math.floor(data.length / this.perRun)) | 1;
    for (let i = (this.samples.length * 7919) % stride; i < data.length; i += stride) this.samples.push(data[i]);
  }

  range(method: RangeMethod, p: number): ActivationRange {
    if (method === 'minmax' || this.samples.length === 0) return { min: this.min, max: this.max };
    const s = Float32Array.from(this.samples).sort();
    const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.round((q / 100) * (s.length - 1))))];
    const pct = (q: number): ActivationRange => ({ min: Math.max(this.min, at(100 - q)), max: Math.min(this.max, at(q)) });
    if (method === 'percentile') return pct(p);
    // mse: of a few clipping points, the one whose u8 rounding + clipping error on the sample is least
    let best = pct(p), bestErr = Infinity;
    for (const q of [99.9, 99.95, 99.98, 99.99, 99.995, 99.999, 100]) {
      const r = q === 100 ? { min: this.min, max: this.max } : pct(q);
      const { scale, zeroPoint } = u8Params(r);
      let err = 0;
      for (let i = 0; i < s.length; i++) {
        const v = Math.min(255, Math.max(0, Math.round(s[i] / scale) + zeroPoint));
        err += ((v - zeroPoint) * scale - s[i]) ** 2;
      }
      if (err < bestErr) { bestErr = err; best = r; }
    }
    return best;
  }
}

class Probe {
  /** Per point: each run's per-channel max |value| (for the equalisation). */
  readonly channelMax = new Map<string, Float32Array[]>();
  private constructor(private readonly session: ort.InferenceSession, private readonly inputName: string, readonly points: string[], readonly samplers: Map<string, RangeSampler>) {}

  static async create(model: { model: Uint8Array; points: string[] }, inputName: string, opts: RuntimeOptions): Promise<Probe> {
    return new Probe(await createSession(model.model, opts), inputName, model.points, new Map(model.points.map((p) => [p, new RangeSampler()])));
  }

  /** Runs, records every point's values, and returns the last point's output. */
  async run(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const res = await this.session.run({ [this.inputName]: new ort.Tensor('float32', data, dims) });
    let last: { data: Float32Array; dims: number[] } | undefined;
    for (const p of this.points) {
      const t = res[p === INPUT_POINT ? INPUT_POINT : `probe_${p}`];
      const d = t.data as Float32Array;
      this.samplers.get(p)!.add(d);
      const c = t.dims[1], n = d.length / c;
      const m = new Float32Array(c);
      for (let ch = 0; ch < c; ch++) {
        let x = 0;
        for (let i = ch * n; i < (ch + 1) * n; i++) x = Math.max(x, Math.abs(d[i]));
        m[ch] = x;
      }
      let list = this.channelMax.get(p);
      if (!list) this.channelMax.set(p, (list = []));
      list.push(m);
      last = { data: d, dims: [...t.dims] };
    }
    return last!;
  }

  ranges(method: RangeMethod, p: number): NetworkRanges {
    return Object.fromEntries([...this.samplers].map(([k, s]) => [k, s.range(method, p)]));
  }

  /** A channel's typical size: the 90th percentile over runs of its per-run max (one odd image does not set it). */
  channelRange(point: string): Float32Array {
    const runs = this.channelMax.get(point)!;
    const c = runs[0].length;
    const out = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) {
      const v = runs.map((r) => r[ch]).sort((a, b) => a - b);
      out[ch] = v[Math.min(v.length - 1, Math.floor(0.9 * v.length))];
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

export const DEFAULT_EQUALIZATION_ALPHA = 0.5;

/**
 * Per-channel scales for every quantised tensor that feeds a conv: s[c] = r[c]^alpha / w[c]^(1-alpha),
 * r the channel's activation range and w the largest weight reading it in the next conv, so
 * that range moves between the u8 activations and the s8 weights (alpha = 1: all of it onto
 * the weights). Normalised to geometric mean 1; dead channels keep 1.
 */
function channelScales(layers: readonly Layer[], w: ConvWeights, probe: Probe, alpha: number, role: 'encoder' | 'decoder'): ChannelScales {
  const convs = layers.filter((l): l is ConvLayer => l.kind === 'conv');
  const out: ChannelScales = {};
  // next: the conv reading the tensor; none for a graph output, whose range has no weights to share it with
  const compute = (point: string, next?: ConvLayer) => {
    const r = probe.channelRange(point);
    const p = next ? w.get(next.name)! : undefined;
    const c = r.length;
    const s = new Array<number>(c).fill(1);
    let logSum = 0, live = 0;
    for (let j = 0; j < c; j++) {
      let wm = 1;
      if (p) {
        const [o, , kh, kw] = p.weight.shape;
        wm = 0;
        for (let i = 0; i < o; i++) for (let t = 0; t < kh * kw; t++) wm = Math.max(wm, Math.abs(p.weight.data[(i * c + j) * kh * kw + t]));
      }
      if (!(r[j] > 0 && wm > 0)) continue;
      s[j] = p ? r[j] ** alpha / wm ** (1 - alpha) : r[j];
      logSum += Math.log(s[j]); live++;
    }
    const gm = live ? Math.exp(logSum / live) : 1;
    out[point] = s.map((x, j) => (r[j] > 0 ? x / gm : 1));
  };
  // the decoder's input is AdaIN's output, of very different sizes per channel; the encoder's an image
  if (role === 'decoder') compute(INPUT_POINT, convs[0]);
  // only ReLU outputs: the input conv without one is folded into conv1_1 (qdq.ts foldInputConv)
  convs.forEach((l, i) => { if (l.relu && i + 1 < convs.length) compute(l.name, convs[i + 1]); });
  // An encoder's features leave the graph: each channel is divided by its whole range and the
  // graph multiplies it back (qdq.ts qdqEncoderModel)
  if (role === 'encoder') compute(convs.at(-1)!.name);
  return out;
}

export interface CalibrationData {
  contents: RgbImage[];
  styles: RgbImage[];
}

/** `n` images spread evenly over the sorted listing of `dir`, read at size x size. */
export async function readCalibrationImages(dir: string, n: number, size: number, flag: string): Promise<RgbImage[]> {
  let entries: string[];
  try {
    entries = (await fs.readdir(dir)).filter((e) => !e.startsWith('.') && hasImageExtension(e)).sort();
  } catch (err) {
    throw new UserError(`${flag} ${dir}: cannot list this folder (${(err as NodeJS.ErrnoException).code ?? String(err)}); give a folder of images`);
  }
  if (entries.length === 0) throw new UserError(`${flag} ${dir}: no images in this folder; give a folder of training images`);
  const picked = [...new Set(Array.from({ length: Math.min(n, entries.length) }, (_, i) => entries[Math.floor((i * entries.length) / Math.min(n, entries.length))]))];
  const out: RgbImage[] = [];
  // Aspect is not kept: ranges are per tensor, and a squashed photo has the same kind of values.
  for (const e of picked) out.push(await resizeImage(await readImage(path.join(dir, e), { maxSize: 2 * size }), size, size));
  return out;
}

/**
 * Measures the ranges: every content and every style through the encoder (both are encoded
 * when stylising), and each content with its styles (style k goes with content k mod n) through
 * AdaIN and the decoder; the plain content features too (alpha = 0 decodes those). Twice: the
 * first pass sizes the channels for the equalisation, the second measures the equalised networks.
 */
export async function measureRanges(kind: EncoderKind, cut: CutLayer, enc: ConvWeights, dec: ConvWeights, data: CalibrationData, opts: RuntimeOptions & { percentile?: number; alpha?: number } = {}): Promise<Pick<Calibration, 'ranges' | 'equalization'>> {
  const encLayers = encoderLayers(cut, kind !== 'vgg19bn');
  const decLayers = decoderLayers(cut);
  const featC = [...enc.values()].at(-1)!.weight.shape[0];
  const alpha = opts.alpha ?? DEFAULT_EQUALIZATION_ALPHA;
  const pass = async (encScales: ChannelScales, decScales: ChannelScales) => {
    const encoder = await Probe.create(probeModel(encLayers, enc, 'image', 3, encScales), 'image', opts);
    const decoder = await Probe.create(probeModel(decLayers, dec, 'features', featC, decScales), 'features', opts);
    try {
      // the features as the int8 encoder gives them: equalised channels multiplied back
      const unscale = encScales[encLayers.filter((l) => l.kind === 'conv').at(-1)!.name];
      const features = async (img: RgbImage) => {
        const o = await encoder.run(img.data, [1, 3, img.height, img.width]);
        const plane = o.dims[2] * o.dims[3];
        if (unscale) for (let i = 0; i < o.data.length; i++) o.data[i] *= unscale[Math.floor(i / plane) % o.dims[1]];
        return { c: o.dims[1], h: o.dims[2], w: o.dims[3], data: o.data };
      };
      const contentFeats = [];
      for (const c of data.contents) contentFeats.push(await features(c));
      for (let k = 0; k < data.styles.length; k++) {
        const stats = channelStats(await features(data.styles[k]));
        const t = adain(contentFeats[k % contentFeats.length], stats, 1);
        await decoder.run(t.data, [1, t.c, t.h, t.w]);
      }
      for (const f of contentFeats) await decoder.run(f.data, [1, f.c, f.h, f.w]);
      return { encoder, decoder };
    } catch (err) {
      await encoder.dispose();
      await decoder.dispose();
      throw err;
    }
  };
  const first = await pass({}, {});
  const equalization = {
    alpha,
    encoder: alpha > 0 ? channelScales(encLayers, enc, first.encoder, alpha, 'encoder') : {},
    decoder: alpha > 0 ? channelScales(decLayers, dec, first.decoder, alpha, 'decoder') : {},
  };
  await first.encoder.dispose();
  await first.decoder.dispose();
  const { encoder, decoder } = alpha > 0 ? await pass(equalization.encoder, equalization.decoder) : await pass({}, {});
  try {
    const p = opts.percentile ?? DEFAULT_PERCENTILE;
    const ranges = {} as Record<RangeMethod, NetworkPairRanges>;
    for (const m of RANGE_METHODS) {
      const e = encoder.ranges(m, p);
      // The image input is [0,1] by contract; 1/255 steps represent an 8-bit photo exactly.
      e[INPUT_POINT] = { min: 0, max: 1 };
      const d = decoder.ranges(m, p);
      // The decoded image must keep all of [0,1] whatever the samples said; values beyond are clamped when saved.
      const last = decLayers.filter((l): l is ConvLayer => l.kind === 'conv').at(-1)!;
      d[last.name] = { min: Math.min(d[last.name].min, 0), max: Math.max(d[last.name].max, 1) };
      ranges[m] = { encoder: e, decoder: d };
    }
    return { ranges, equalization };
  } finally {
    await encoder.dispose();
    await decoder.dispose();
  }
}

export interface CalibrateOptions extends RuntimeOptions {
  model: string;
  kind: EncoderKind;
  cut: CutLayer;
  encoderFile: string;
  decoderFile: string;
  enc: ConvWeights;
  dec: ConvWeights;
  contentDir: string;
  styleDir: string;
  contents?: number;
  styles?: number;
  size?: number;
  percentile?: number;
  method?: RangeMethod;
  /** The decoder's, when it differs from `method`; default DEFAULT_DECODER_METHOD when `method` is not given either. */
  decoderMethod?: RangeMethod;
  /** Conv layers kept in float; default defaultFloatLayers. */
  float?: { encoder: string[]; decoder: string[] };
  /** Equalisation strength (0 = none); see channelScales. */
  alpha?: number;
  /** Write here instead of beside the decoder (or the cache). */
  output?: string;
  cacheDir?: string;
  onNote?: (line: string) => void;
}

/** Calibrates and writes the file: beside the decoder when that folder is writable, else in the cache. Returns where. */
export async function calibrate(o: CalibrateOptions): Promise<{ file: string; calibration: Calibration }> {
  const size = o.size ?? DEFAULT_CALIBRATION_SIZE;
  const note = o.onNote ?? (() => {});
  note(`reading ${o.contents ?? DEFAULT_CALIBRATION_CONTENTS} content and ${o.styles ?? DEFAULT_CALIBRATION_STYLES} style images at ${size}x${size}`);
  const data = {
    contents: await readCalibrationImages(o.contentDir, o.contents ?? DEFAULT_CALIBRATION_CONTENTS, size, '--content'),
    styles: await readCalibrationImages(o.styleDir, o.styles ?? DEFAULT_CALIBRATION_STYLES, size, '--style'),
  };
  note('measuring activation ranges');
  const encLayers = encoderLayers(o.cut, o.kind !== 'vgg19bn'), decLayers = decoderLayers(o.cut);
  const float = o.float ?? defaultFloatLayers(encLayers, decLayers, o.dec);
  for (const [net, ls] of [['encoder', encLayers], ['decoder', decLayers]] as const) {
    const names = ls.filter((l) => l.kind === 'conv').map((l) => l.name);
    for (const n of float[net]) if (!names.includes(n)) throw new UserError(`--float ${n}: the ${net} of ${o.model} has no such conv; its convs are ${names.join(', ')}`);
  }
  note(`kept in float: ${[...float.encoder, ...float.decoder].join(', ') || 'none'}`);
  const { ranges, equalization } = await measureRanges(o.kind, o.cut, o.enc, o.dec, data, o);
  const [encSha, decSha] = await Promise.all([sha256File(o.encoderFile), sha256File(o.decoderFile)]);
  const calibration: Calibration = roundNumbers({
    format: CALIBRATION_FORMAT, version: CALIBRATION_VERSION, model: o.model,
    encoder: { file: path.basename(o.encoderFile), sha256: encSha },
    decoder: { file: path.basename(o.decoderFile), sha256: decSha },
    method: o.method ?? DEFAULT_METHOD, decoderMethod: o.decoderMethod ?? o.method ?? DEFAULT_DECODER_METHOD, float,
    percentile: o.percentile ?? DEFAULT_PERCENTILE,
    pairs: data.styles.length, size, created: new Date().toISOString(), equalization, ranges,
  } satisfies Calibration);
  if (o.output) {
    await writeCalibration(o.output, calibration);
    return { file: o.output, calibration };
  }
  const beside = calibrationPathFor(o.decoderFile);
  try {
    await writeCalibration(beside, calibration);
    return { file: beside, calibration };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw err;
    const cached = cachedCalibrationPath(decSha, o);
    note(`${path.dirname(beside)} is not writable (${code}); writing to the cache instead`);
    await writeCalibration(cached, calibration);
    return { file: cached, calibration };
  }
}
