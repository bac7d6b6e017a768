import type * as ort from 'onnxruntime-node';
import { UserError } from '../errors.js';
import type { RgbImage } from '../image/io.js';
import { encoderLayers, type CutLayer } from '../models/architectures.js';
import { encoderWeights, type ConvWeights } from '../models/canonical-weights.js';
import { encoderModel } from '../models/graphs.js';
import { findModel } from '../models/registry.js';
import { resolveWeightFile, type ResolveOptions } from '../models/resolve.js';
import { createSession, runFloat, type RuntimeOptions } from '../runtime/session.js';
import { channelStats, type ChannelStats, type FeatureMap } from '../stylize/features.js';
import { readWeights } from '../weights/index.js';

/**
 * The independent judge of `adain eval`: the real normalised VGG-19 (the original AdaIN
 * encoder family, `vgg19-normalised/vgg_normalised_conv3_1.pth`) up to relu3_1, the same for
 * every model, whatever encoder the model itself uses.
 *
 * - style distance = sum over relu1_1, relu2_1, relu3_1 of the mean over channels of
 *   (mu - mu_s)^2 + (sigma - sigma_s)^2, mu/sigma the per-channel mean and population std
 *   over H*W (eps 1e-5 inside the sqrt, as channelStats); this is the AdaIN style loss
 *   with mean reductions (the `mse` kind of train/losses.ts) at batch 1;
 * - content distance = mean over all elements of (f3(output) - f3(content))^2 at relu3_1.
 *
 * Images are RGB in [0,1]; outputs are clamped to [0,1] before judging (what a user sees).
 */
export const JUDGE_LAYERS: readonly CutLayer[] = ['relu1_1', 'relu2_1', 'relu3_1'];
export const JUDGE_CONTENT_LAYER: CutLayer = 'relu3_1';
/** The registry model whose encoder file is the judge. */
export const JUDGE_MODEL = 'vgg19-r31';

/** The judge's features of one image, by layer. */
export type JudgeFeatures = Map<CutLayer, FeatureMap>;

/** Style statistics at each judge layer, in JUDGE_LAYERS order. */
export type StyleTarget = ChannelStats[];

/** sum over layers of mean_c (mu - mu_s)^2 + mean_c (sigma - sigma_s)^2, in float64. */
export function styleDistance(a: readonly ChannelStats[], b: readonly ChannelStats[]): number {
  if (a.length !== b.length) throw new RangeError(`style distance: ${a.length} layers vs ${b.length}`);
  let total = 0;
  a.forEach((s, l) => {
    const t = b[l];
    const c = s.mean.length;
    if (t.mean.length !== c || s.std.length !== c || t.std.length !== c) throw new RangeError(`style distance: layer ${l} has ${c} vs ${t.mean.length} channels`);
    let dm = 0, ds = 0;
    for (let i = 0; i < c; i++) {
      dm += (s.mean[i] - t.mean[i]) ** 2;
      ds += (s.std[i] - t.std[i]) ** 2;
    }
    total += dm / c + ds / c;
  });
  return total;
}

/** mean over all elements of (a - b)^2, in float64. */
export function contentDistance(a: FeatureMap, b: FeatureMap): number {
  if (a.c !== b.c || a.h !== b.h || a.w !== b.w) throw new RangeError(`content distance: maps ${a.c}x${a.h}x${a.w} vs ${b.c}x${b.h}x${b.w}`);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] - b.data[i]) ** 2;
  return s / a.data.length;
}

/** The style statistics of a set of feature maps (one per judge layer). */
export function statsOf(features: JudgeFeatures): StyleTarget {
  return JUDGE_LAYERS.map((l) => channelStats(features.get(l)!));
}

/** A copy with every value clamped to [0,1] (NaN becomes 0, as when the image is saved). */
export function clampImage(img: RgbImage): RgbImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = img.data[i];
    data[i] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
  return { width: img.width, height: img.height, data };
}

export interface JudgeLoadOptions extends RuntimeOptions, Omit<ResolveOptions, 'fetchImpl'> {
  /** The judge's weights file instead of the registry's vgg_normalised_conv3_1.pth. */
  file?: string;
}

/** Both distances, and the output's relu3_1 features (for measures built on them, such as cfsd). */
export interface Measurement { style: number; content: number; features: FeatureMap }

export class Judge {
  private constructor(private readonly session: ort.InferenceSession, readonly weights: ConvWeights) {}

  /** Loads the normalised VGG-19 to relu3_1 (found in the models dir or downloaded and verified). */
  static async load(opts: JudgeLoadOptions = {}): Promise<Judge> {
    const file = opts.file ?? (await resolveWeightFile(findModel(JUDGE_MODEL).encoder.weights, opts));
    return Judge.fromWeights(encoderWeights('vgg19-normalised', JUDGE_CONTENT_LAYER, await readWeights(file), file), opts);
  }

  static async fromWeights(weights: ConvWeights, opts: RuntimeOptions = {}): Promise<Judge> {
    const layers = encoderLayers(JUDGE_CONTENT_LAYER, true);
    return new Judge(await createSession(encoderModel(layers, weights, JUDGE_LAYERS), opts), weights);
  }

  /** Features at relu1_1, relu2_1 and relu3_1 of an image at least 8x8 (values used as given). */
  async features(img: RgbImage): Promise<JudgeFeatures> {
    if (img.width < 8 || img.height < 8) throw new UserError(`the judge needs images of at least 8x8 pixels, got ${img.width}x${img.height}`);
    const out = await runFloat(this.session, 'image', img.data, [1, 3, img.height, img.width]);
    return new Map(JUDGE_LAYERS.map((l) => {
      const t = out.get(l)!;
      return [l, { c: t.dims[1], h: t.dims[2], w: t.dims[3], data: t.data }];
    }));
  }

  async styleTarget(style: RgbImage): Promise<StyleTarget> {
    return statsOf(await this.features(style));
  }

  async contentTarget(content: RgbImage): Promise<FeatureMap> {
    return (await this.features(content)).get(JUDGE_CONTENT_LAYER)!;
  }

  /** Both distances of an output (clamped to [0,1] first) from its content features and style statistics. */
  async measure(output: RgbImage, content: FeatureMap, style: StyleTarget): Promise<Measurement> {
    const f = await this.features(clampImage(output));
    const features = f.get(JUDGE_CONTENT_LAYER)!;
    return { style: styleDistance(statsOf(f), style), content: contentDistance(features, content), features };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
