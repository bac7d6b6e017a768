/**
 * `adain export`: a registry model as one static ONNX file for edge runtimes (OpenVINO for
 * the OAK-1's Myriad X, onnxruntime anywhere), validated before it is written: the op
 * allow-list, onnxruntime on real images against the in-process model, and the reference
 * ONNX checker with shape inference where the onnx Python package is installed.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { quoteName, resizeImage, type RgbImage } from '../image/io.js';
import { decoderLayers, downsampleFactor, encoderLayers } from '../models/architectures.js';
import { decoderWeights, encoderWeights } from '../models/canonical-weights.js';
import { DEFAULT_MODEL, findModel, type ModelSpec } from '../models/registry.js';
import { resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import type { RuntimeOptions } from '../runtime/session.js';
import { ADAIN_EPS, type ChannelStats } from '../stylize/features.js';
import { checkAlpha, styleStats, stylizeImage } from '../stylize/model.js';
import { Network } from '../stylize/network.js';
import { DEFAULT_STYLE_SIZE, StyleModel, type ImageInput } from '../stylize/style-model.js';
import { readWeights } from '../weights/index.js';
import { expectedOutput, fromOutputData, quantize8, type PixelFormat } from './formats.js';
import { emulateFloat16, toFloat16Model } from './fp16.js';
import { runOnnxChecker, type CheckerResult } from './onnx-checker.js';
import { checkExportModel, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, type GraphSummary } from './ops.js';
import { buildStylizer, type StyleSource, type StylizerNetwork, type StylizerSpec } from './stylizer.js';
import { clip01, ExportedSession, maxAbsDiff, psnr, type ModelInputs } from './validate.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
/** Real photos the export is validated on, resized to the export size. */
export const DEFAULT_VALIDATION_IMAGES = [path.join(EXAMPLES, 'chelsea.jpg'), path.join(EXAMPLES, 'astronaut.jpg')];
/** The style used for validation when the model takes its style as an input and none was given. */
export const DEFAULT_VALIDATION_STYLE = path.join(EXAMPLES, 'scream.jpg');

/**
 * float16 exports add this instead of 1e-5 inside the sqrt: 1e-5 is subnormal in float16,
 * and hardware that flushes subnormals to zero would turn a dead channel into 0/0 = NaN. It
 * is the smallest normal float16 (2^-14); only channels with variance near it change.
 */
export const FP16_EPS = 2 ** -14;

/** fp32 exports must match the in-process model this closely (float output, RGB in [0,1]). */
export const FP32_TOLERANCE = 2e-3;
/** ...and uint8 outputs to within this many levels (rounding at level boundaries). */
export const U8_TOLERANCE = 1;
/** fp16 exports must reach this PSNR against the in-process float32 model. */
export const FP16_MIN_PSNR = 30;

export type StyleMode = 'baked' | 'stats' | 'image';

export interface ExportOptions extends RuntimeOptions, Omit<ResolveOptions, 'fetchImpl'> {
  /** Registry model name (default cd16x-r41). */
  model?: string;
  /** Encoder / decoder weight files instead of the registry's. */
  encoder?: string;
  decoder?: string;
  /** The fixed input size; multiples of the model's factor (8 for relu4_1, 4 for relu3_1). */
  width: number;
  height: number;
  opset?: number;
  /** Content/style trade-off baked into the graph (default 1). */
  alpha?: number;
  inputFormat?: PixelFormat;
  outputFormat?: PixelFormat;
  /** The style image: its statistics are baked in (mode 'baked') or written for a 'stats' model. */
  style?: ImageInput;
  /** 'baked' (default when a style is given), 'stats' (style_mean/style_std inputs), 'image' (a second input). */
  styleMode?: StyleMode;
  /** Style images are scaled so that their shorter side is this before their statistics are taken (default 512). */
  styleSize?: number;
  /** The style input's fixed size for mode 'image' (default: the content size). */
  styleWidth?: number;
  styleHeight?: number;
  /** Float16 weights and activations (the interface keeps its types). */
  fp16?: boolean;
  /** Content images to validate on (default examples/chelsea.jpg and astronaut.jpg). */
  validationImages?: ImageInput[];
  /** Run scripts/check_onnx.py when Python's onnx is installed (default true). */
  checker?: boolean;
  /** Progress lines. */
  onNote?: (line: string) => void;
  /** Refuse exports whose validation would need more memory than this, in bytes (default: defaultExportMemoryLimit()). */
  memoryBudget?: number;
}

export interface StyleStatsFile {
  format: 'adain-style-stats/1';
  model: string;
  layer: string;
  channels: number;
  style: string;
  style_size: number;
  mean: number[];
  std: number[];
}

export interface ImageCheck {
  name: string;
  /** Largest |exported - in-process| on RGB in [0,1] (uint8 outputs: in levels / 255). */
  maxAbsDiff: number;
  /** PSNR of the exported output against the in-process model, dB. */
  psnr: number;
  /** fp16 exports: PSNR of the float16 model in onnxruntime against the float32 export, dB. */
  psnrVsFp32?: number;
  /**
   * fp16 exports: PSNR against the float32 export of the float32 graph with float16 weights and
   * every intermediate rounded to float16 (onnxruntime's CPU runs the float16 model mostly in
   * float32, so this is the closer picture of a float16 device), dB.
   */
  psnrEmulatedVsFp32?: number;
}

export interface ExportResult {
  bytes: Uint8Array;
  summary: GraphSummary;
  spec: Omit<StylizerSpec, 'style'> & { style: StyleMode };
  fp16: boolean;
  images: ImageCheck[];
  /** What the exported model was compared with. */
  tolerance: string;
  checker: CheckerResult;
  /** The statistics of the given style (baked in, or for feeding a 'stats' model). */
  styleStats?: StyleStatsFile;
}

/** A model loaded for export: the weights for the graph and the in-process reference built from them. */
export interface LoadedExportModel {
  spec: ModelSpec;
  network: StylizerNetwork;
  reference: StyleModel;
  factor: number;
}

export async function loadExportModel(opts: Omit<ExportOptions, 'width' | 'height'>): Promise<LoadedExportModel> {
  const spec = findModel(opts.model ?? DEFAULT_MODEL);
  const { kind, cut } = spec.encoder;
  const encFile = opts.encoder ?? (await resolveWeightFile(spec.encoder.weights, opts));
  const decFile = opts.decoder ?? (await resolveWeightFile(spec.decoder.weights, opts));
  const encoder = encoderWeights(kind, cut, await readWeights(encFile), encFile);
  const decoder = decoderWeights(cut, await readWeights(decFile), decFile);
  const net = await Network.fromWeights(kind, cut, encoder, decoder, { threads: opts.threads }, decFile);
  return {
    spec,
    network: { encoderLayers: encoderLayers(cut, kind !== 'vgg19bn'), encoder, decoderLayers: decoderLayers(cut), decoder },
    reference: new StyleModel(spec, net),
    factor: downsampleFactor(cut),
  };
}

/**
 * Memory the validation needs, fitted to peak RSS of cd16x-r41 exports from 256x256 to
 * 1024x1024 (1.8 KB per pixel in float32, 4.6 KB with --fp16): each onnxruntime session runs
 * the whole image in one piece, nothing is tiled, and each keeps its arena until the end.
 * A run costs about 4x the activation bytes of the hungriest layer (the network's own
 * count, so models with wider layers scale with it), and the float32 check makes two runs
 * (the export and the in-process reference); --fp16 adds the float32 export and the
 * float16-emulating graph, which costs as much as two more. The rest is the images' copies.
 */
const EXPORT_BASE_BYTES = 400 * 1024 ** 2;
const RUN_BYTES_PER_ACTIVATION_BYTE = 4;
const IMAGE_BYTES_PER_PIXEL = 320;

export function exportMemoryEstimate(
  net: Pick<Network, 'encoderBytesPerPixel' | 'decoderBytesPerPixel' | 'factor'>,
  o: { width: number; height: number; fp16?: boolean; styleMode?: StyleMode; styleWidth?: number; styleHeight?: number },
): number {
  const run = RUN_BYTES_PER_ACTIVATION_BYTE * Math.max(net.encoderBytesPerPixel, net.decoderBytesPerPixel / net.factor ** 2);
  const runs = o.fp16 ? 6 : 2;
  const pixels = o.width * o.height;
  // a style input goes through the encoder (about half a run) of each exported model, not the reference
  const stylePixels = o.styleMode === 'image' ? (o.styleWidth ?? o.width) * (o.styleHeight ?? o.height) : 0;
  const exported = o.fp16 ? 3 : 1;
  return EXPORT_BASE_BYTES + pixels * (IMAGE_BYTES_PER_PIXEL + runs * run) + stylePixels * exported * (run / 2);
}

/**
 * Three quarters of the memory this process may use (the cgroup limit in a container, else
 * the machine's): unlike stylize, an export cannot fall back to tiles, so the limit only
 * stops a size that would swap or be killed.
 */
export function defaultExportMemoryLimit(): number {
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  const total = constrained && constrained > 0 && constrained < os.totalmem() ? constrained : os.totalmem();
  return Math.floor(0.75 * total);
}

export function checkExportMemory(estimate: number, limit: number, width: number, height: number): void {
  if (estimate <= limit) return;
  const gb = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GB`;
  throw new UserError(
    `--size ${width}x${height} needs about ${gb(estimate)} of memory to build and validate the export, more than the limit of ${gb(limit)}; ` +
      `use a smaller --size, or raise the limit with --memory-budget <GB>`,
  );
}

/** Checks the export size against the model's alignment. */
export function checkExportSize(width: number, height: number, factor: number, flag = '--size'): void {
  for (const [v, what] of [[width, 'width'], [height, 'height']] as const) {
    if (!Number.isInteger(v) || v < 2 * factor || v % factor !== 0) {
      throw new UserError(`${flag} ${what} ${v} must be a multiple of ${factor} and at least ${2 * factor} for this model (it pools ${Math.log2(factor)} times); e.g. 256x256`);
    }
  }
}

export function checkOpset(opset: number): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new UserError(`--opset ${opset} is not supported; choose ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET})`);
  }
  return opset;
}

/** The graph spec for the options; style statistics must be given for a baked style. */
export function stylizerSpec(loaded: LoadedExportModel, opts: ExportOptions, bakedStats?: ChannelStats, styleLabel = 'style'): StylizerSpec {
  const mode = styleModeOf(opts);
  const style: StyleSource = mode === 'baked' ? { kind: 'baked', stats: bakedStats! }
    : mode === 'stats' ? { kind: 'stats' }
      : { kind: 'image', width: opts.styleWidth ?? opts.width, height: opts.styleHeight ?? opts.height };
  const alpha = checkAlpha(opts.alpha ?? 1);
  const input = opts.inputFormat ?? 'rgb-float', output = opts.outputFormat ?? 'rgb-float';
  const eps = opts.fp16 ? FP16_EPS : ADAIN_EPS;
  const opset = checkOpset(opts.opset ?? DEFAULT_OPSET);
  return {
    width: opts.width, height: opts.height, opset, alpha, input, output, style, eps,
    metadata: {
      'adain.model': loaded.spec.name,
      'adain.layer': loaded.spec.encoder.cut,
      'adain.size': `${opts.width}x${opts.height}`,
      'adain.input_format': input,
      'adain.output_format': output,
      'adain.style': mode === 'baked' ? `baked:${styleLabel}` : mode === 'stats' ? 'input:style_mean,style_std' : `input:style ${style.kind === 'image' ? `${style.width}x${style.height}` : ''}`,
      'adain.alpha': String(alpha),
      'adain.precision': opts.fp16 ? 'float16' : 'float32',
      'adain.eps': String(eps),
    },
  };
}

export function styleModeOf(opts: Pick<ExportOptions, 'styleMode' | 'style'>): StyleMode {
  if (opts.styleMode) return opts.styleMode;
  if (opts.style === undefined) throw new UserError('give a style to bake in (--style FILE), or choose a model that takes the style at run time (--style-stats or --style-input)');
  return 'baked';
}

/** The graph bytes, float16 when asked; checked against the op allow-list. */
export function buildExportBytes(loaded: LoadedExportModel, spec: StylizerSpec, fp16: boolean): Uint8Array {
  const f32 = buildStylizer(loaded.network, spec);
  const bytes = fp16 ? toFloat16Model(f32) : f32;
  checkExportModel(bytes);
  return bytes;
}

/** Builds and validates the model; nothing is written (see writeExport). */
export async function exportStylizer(opts: ExportOptions): Promise<ExportResult> {
  const note = opts.onNote ?? (() => {});
  const mode = styleModeOf(opts);
  checkOpset(opts.opset ?? DEFAULT_OPSET);
  checkAlpha(opts.alpha ?? 1);
  const loaded = await loadExportModel(opts);
  try {
    checkExportSize(opts.width, opts.height, loaded.factor);
    if (mode === 'image') checkExportSize(opts.styleWidth ?? opts.width, opts.styleHeight ?? opts.height, loaded.factor, '--style-input-size');
    // before any image is read at the export size: that is where the gigabytes go
    checkExportMemory(exportMemoryEstimate(loaded.reference.network, { ...opts, styleMode: mode }), opts.memoryBudget ?? defaultExportMemoryLimit(), opts.width, opts.height);
    const ref = loaded.reference;
    const styleSize = opts.styleSize ?? DEFAULT_STYLE_SIZE;
    const styleLabel = typeof opts.style === 'string' ? path.basename(opts.style) : 'style';

    // The style: the user's, else a stock one for validating a model that takes it at run time.
    const givenStats = opts.style !== undefined && mode !== 'image' ? await ref.styleStats(opts.style, { styleSize }) : undefined;
    const validationStyle = opts.style ?? DEFAULT_VALIDATION_STYLE;
    let styleImage: RgbImage | undefined;
    let stats: ChannelStats;
    if (mode === 'image') {
      const sw = opts.styleWidth ?? opts.width, sh = opts.styleHeight ?? opts.height;
      styleImage = quantize8(await resizeImage(await ref.readContent(validationStyle), sw, sh));
      stats = await styleStats(ref.network, styleImage);
    } else {
      stats = givenStats ?? (await ref.styleStats(validationStyle, { styleSize }));
    }

    const spec = stylizerSpec(loaded, opts, stats, styleLabel);
    note(`building ${opts.width}x${opts.height} ${opts.fp16 ? 'float16' : 'float32'} graph, opset ${spec.opset}`);
    const bytes = buildExportBytes(loaded, spec, opts.fp16 ?? false);
    const summary = checkExportModel(bytes);

    note('validating in onnxruntime against the in-process model');
    const contents: { name: string; img: RgbImage }[] = [];
    for (const [i, src] of (opts.validationImages ?? DEFAULT_VALIDATION_IMAGES).entries()) {
      const img = await ref.readContent(src);
      contents.push({ name: typeof src === 'string' ? path.basename(src) : `image ${i + 1}`, img: quantize8(await resizeImage(img, opts.width, opts.height)) });
    }
    const formats = { input: spec.input, output: spec.output, style: spec.style.kind };
    const session = await ExportedSession.create(bytes, formats, opts);
    const fp32Session = opts.fp16 ? await ExportedSession.create(buildExportBytes(loaded, { ...spec, eps: ADAIN_EPS }, false), formats, opts) : undefined;
    const emulatedSession = opts.fp16 ? await ExportedSession.create(emulateFloat16(buildStylizer(loaded.network, spec)), formats, opts) : undefined;
    const images: ImageCheck[] = [];
    try {
      for (const { name, img } of contents) {
        const inputs: ModelInputs = { content: img, style: styleImage, stats };
        const raw = await session.runRaw(inputs);
        if (!raw.every(Number.isFinite)) throw new Error(`validation failed: the exported model outputs NaN or Infinity on ${name}; nothing was written`);
        const got = await session.run(inputs);
        const want = await stylizeImage(ref.network, img, [stats], { alpha: spec.alpha });
        const wantRaw = expectedOutput(want, spec.output);
        // uint8 outputs are compared with the in-process result rounded the same way
        const wantRgb = spec.output === 'rgb-float' ? clip01(want) : fromOutputData(wantRaw, spec.output, img.width, img.height);
        const check: ImageCheck = {
          name,
          maxAbsDiff: maxAbsDiff(raw, wantRaw) / (spec.output === 'rgb-float' ? 1 : 255),
          psnr: psnr(got.data, wantRgb.data),
        };
        if (fp32Session && emulatedSession) {
          const fp32 = (await fp32Session.run(inputs)).data;
          check.psnrVsFp32 = psnr(got.data, fp32);
          check.psnrEmulatedVsFp32 = psnr((await emulatedSession.run(inputs)).data, fp32);
        }
        images.push(check);
      }
    } finally {
      await session.dispose();
      await fp32Session?.dispose();
      await emulatedSession?.dispose();
    }

    let tolerance: string;
    if (opts.fp16) {
      tolerance = `PSNR >= ${FP16_MIN_PSNR} dB against the in-process float32 model, also with every activation rounded to float16`;
      for (const c of images) {
        const worst = Math.min(c.psnr, c.psnrEmulatedVsFp32 ?? Infinity);
        if (!(worst >= FP16_MIN_PSNR)) throw new Error(`validation failed: the float16 export reaches ${worst.toFixed(1)} dB PSNR on ${c.name}, under ${FP16_MIN_PSNR} dB; nothing was written`);
      }
    } else {
      const tol = spec.output === 'rgb-float' ? FP32_TOLERANCE : U8_TOLERANCE / 255;
      tolerance = spec.output === 'rgb-float' ? `max |diff| <= ${FP32_TOLERANCE} against the in-process model` : `within ${U8_TOLERANCE} level of the in-process model`;
      const bad = images.find((c) => !(c.maxAbsDiff <= tol + 1e-9));
      if (bad) throw new Error(`validation failed: the export differs from the in-process model by ${bad.maxAbsDiff.toExponential(2)} on ${bad.name} (allowed ${tol.toExponential(2)}); nothing was written`);
    }

    let checker: CheckerResult = { status: 'skipped', why: 'turned off' };
    if (opts.checker ?? true) {
      note('running the ONNX checker and shape inference');
      checker = await runOnnxChecker(bytes);
      if (checker.status === 'failed') throw new Error(`validation failed: the ONNX checker rejects the export (${checker.python}): ${checker.errors.join('; ')}; nothing was written`);
    }

    const c = stats.mean.length;
    return {
      bytes, summary, fp16: opts.fp16 ?? false, images, tolerance, checker,
      spec: { ...spec, style: mode },
      styleStats: givenStats && {
        format: 'adain-style-stats/1', model: loaded.spec.name, layer: loaded.spec.encoder.cut, channels: c,
        style: styleLabel, style_size: styleSize, mean: [...givenStats.mean], std: [...givenStats.std],
      },
    };
  } finally {
    await loaded.reference.dispose();
  }
}

/** Style statistics from a JSON file written by `adain export --stats-output`. */
export async function readStyleStatsFile(file: string): Promise<ChannelStats & { model: string; layer: string }> {
  let parsed: Partial<StyleStatsFile>;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new UserError(`cannot read style statistics ${quoteName(file)}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed.format !== 'adain-style-stats/1' || !Array.isArray(parsed.mean) || !Array.isArray(parsed.std) || parsed.mean.length !== parsed.std.length) {
    throw new UserError(`${quoteName(file)} is not an adain style-statistics file (format adain-style-stats/1 with mean and std arrays)`);
  }
  return { model: parsed.model ?? '', layer: parsed.layer ?? '', mean: Float32Array.from(parsed.mean), std: Float32Array.from(parsed.std) };
}

/** Writes bytes through a temporary file in the same folder and a rename: never a half-written model. */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, bytes, { flag: 'wx' });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`cannot write ${quoteName(file)}: folder ${quoteName(path.dirname(file))} does not exist; create it first`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new UserError(`cannot write ${quoteName(file)}: permission denied; choose a folder you can write to`);
    if (code === 'EISDIR') throw new UserError(`cannot write ${quoteName(file)}: it is a folder; give a file name such as stylizer.onnx`);
    throw err;
  }
}
